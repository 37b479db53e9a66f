package gerrittest

import (
	"net/http"
	"sort"
)

type relatedInfo struct {
	Project               string      `json:"project"`
	ChangeID              string      `json:"change_id"`
	Commit                *commitInfo `json:"commit"`
	ChangeNumber          int         `json:"_change_number"`
	RevisionNumber        int         `json:"_revision_number"`
	CurrentRevisionNumber int         `json:"_current_revision_number"`
	Status                string      `json:"status"`
}

func relatedJSON(c *change, ps *patchset) relatedInfo {
	ci := commitJSON(ps, true)
	// Real Gerrit leaves committer and message out of related changes.
	ci.Message, ci.Committer = "", nil
	for i := range ci.Parents {
		ci.Parents[i].Subject = ""
	}
	return relatedInfo{Project: c.project.name, ChangeID: c.changeID, Commit: ci, ChangeNumber: c.number,
		RevisionNumber: ps.number, CurrentRevisionNumber: c.current().number, Status: c.status}
}

// patchsetByRev finds the change and patchset of a commit in a project.
func (s *Server) patchsetByRev(p *project, rev string) (*change, *patchset) {
	for _, c := range s.changes {
		if c.project != p {
			continue
		}
		for _, ps := range c.patchsets {
			if ps.rev == rev {
				return c, ps
			}
		}
	}
	return nil, nil
}

// getRelated answers GET /changes/{id}/revisions/{rev}/related: the
// relation chain through git parents, descendants first (the farthest
// first), then the change itself, then its ancestors up to the first
// merged one. A change without relations gets an empty list.
func (s *Server) getRelated(q *restRequest, id, rev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ps, ok := s.lookup(q, id, rev)
	if !ok {
		return
	}
	var ancestors []relatedInfo
	seen := map[*change]bool{c: true}
	for cur := ps; len(cur.parents) > 0; {
		pc, pps := s.patchsetByRev(c.project, cur.parents[0])
		if pc == nil || pc.status == statusMerged || seen[pc] {
			break
		}
		seen[pc] = true
		ancestors = append(ancestors, relatedJSON(pc, pps))
		cur = pps
	}
	var descendants []relatedInfo
	for frontier := []*change{c}; len(frontier) > 0; {
		var next []*change
		revs := map[string]bool{}
		for _, f := range frontier {
			for _, p := range f.patchsets {
				revs[p.rev] = true
			}
		}
		var children []*change
		for _, d := range s.changes {
			if !seen[d] && d.project == c.project && d.status == statusNew && len(d.current().parents) > 0 &&
				revs[d.current().parents[0]] {
				children = append(children, d)
			}
		}
		sort.Slice(children, func(i, j int) bool { return children[i].number < children[j].number })
		for _, d := range children {
			seen[d] = true
			descendants = append(descendants, relatedJSON(d, d.current()))
			next = append(next, d)
		}
		frontier = next
	}
	out := []relatedInfo{}
	if len(ancestors)+len(descendants) > 0 {
		for i := len(descendants) - 1; i >= 0; i-- {
			out = append(out, descendants[i])
		}
		out = append(out, relatedJSON(c, ps))
		out = append(out, ancestors...)
	}
	writeJSON(q, http.StatusOK, map[string]any{"changes": out})
}

// testSubmitRule answers POST .../revisions/{rev}/test.submit_rule with
// Gerrit 2.x SubmitRecords: status, and label -> account for ok/reject,
// label -> {} for need/may.
func (s *Server) testSubmitRule(q *restRequest, id, rev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ps, ok := s.lookup(q, id, rev)
	if !ok {
		return
	}
	recs := submitRecords(c.project, ps)
	out := map[string]any{"status": "OK"}
	if !submittable(recs) {
		out["status"] = "NOT_READY"
	}
	for _, r := range recs {
		key := map[string]string{recOK: "ok", recNeed: "need", recReject: "reject", recMay: "may"}[r.status]
		m, _ := out[key].(map[string]any)
		if m == nil {
			m = map[string]any{}
			out[key] = m
		}
		if r.by != nil {
			m[r.label] = accountJSON(r.by, true)
		} else {
			m[r.label] = map[string]any{}
		}
	}
	writeJSON(q, http.StatusOK, []any{out})
}
