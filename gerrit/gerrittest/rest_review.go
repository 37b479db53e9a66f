package gerrittest

import (
	"net/http"
)

// reviewInput is Gerrit's ReviewInput (the fields the fake honours;
// notify and comments are accepted and ignored).
type reviewInput struct {
	Message        string         `json:"message"`
	Tag            string         `json:"tag"`
	Labels         map[string]int `json:"labels"`
	StrictLabels   *bool          `json:"strict_labels"`
	Notify         string         `json:"notify"`
	Ready          bool           `json:"ready"`
	WorkInProgress bool           `json:"work_in_progress"`
}

// postReview answers POST /changes/{id}/revisions/{rev}/review.
func (s *Server) postReview(q *restRequest, id, rev string) {
	var in reviewInput
	if err := decodeInput(q, &in); err != nil {
		writeError(q.w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ps, ok := s.lookup(q, id, rev)
	if !ok {
		return
	}
	labels, err := s.reviewLocked(c, ps, q.who, in)
	if err != nil {
		writeError(q.w, err)
		return
	}
	out := map[string]any{"labels": labels}
	if in.Ready {
		out["ready"] = true
	}
	writeJSON(q, http.StatusOK, out)
}

// postSubmit answers POST /changes/{id}/submit (ChangeInfo) and
// /changes/{id}/revisions/{rev}/submit (SubmitInfo).
func (s *Server) postSubmit(q *restRequest, id, rev string, revision bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ps, ok := s.lookup(q, id, rev)
	if !ok {
		return
	}
	if err := s.submitLocked(c, ps, q.who); err != nil {
		writeError(q.w, err)
		return
	}
	if revision {
		writeJSON(q, http.StatusOK, map[string]string{"status": statusMerged})
		return
	}
	writeJSON(q, http.StatusOK, s.changeJSON(c, parseOptions(q.r.URL.Query()), q.who))
}

// postState answers abandon, restore, wip, ready and private.
func (s *Server) postState(q *restRequest, id, action string) {
	var in struct {
		Message string `json:"message"`
	}
	if err := decodeInput(q, &in); err != nil {
		writeError(q.w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, ok := s.lookup(q, id, "current")
	if !ok {
		return
	}
	var err error
	status := http.StatusOK
	switch {
	case action == "abandon":
		err = s.abandonLocked(c, q.who, in.Message)
	case action == "restore":
		err = s.restoreLocked(c, q.who, in.Message)
	case action == "wip" || action == "ready":
		err = s.setWIPLocked(c, q.who, action == "wip")
	case q.r.Method == http.MethodDelete:
		err, status = s.setPrivateLocked(c, q.who, false), http.StatusNoContent
	default:
		status = http.StatusCreated
		if c.private {
			status = http.StatusOK
		}
		err = s.setPrivateLocked(c, q.who, true)
	}
	switch {
	case err != nil:
		writeError(q.w, err)
	case action == "abandon" || action == "restore":
		writeJSON(q, status, s.changeJSON(c, options{}, q.who))
	default:
		q.w.WriteHeader(status)
	}
}

// deleteVoteREST answers DELETE /changes/{id}/reviewers/{account}/votes/{label}.
func (s *Server) deleteVoteREST(q *restRequest, id, reviewer, label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, ok := s.lookup(q, id, "current")
	if !ok {
		return
	}
	var r *account
	for _, a := range s.accounts {
		if reviewer == "self" && a == q.who || reviewer != "self" && accountMatches(a, reviewer, q.who) {
			r = a
		}
	}
	if r == nil {
		writeError(q.w, errf(http.StatusNotFound, "Not found: %s", reviewer))
		return
	}
	if err := s.deleteVoteLocked(c, label, r, q.who); err != nil {
		writeError(q.w, err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}
