package gerrittest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// timeLayout is Gerrit's REST timestamp: UTC, nine fraction digits.
const timeLayout = "2006-01-02 15:04:05.000000000"

func gerritTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// restRequest is one REST call being answered.
type restRequest struct {
	w    http.ResponseWriter
	r    *http.Request
	who  *account // nil when anonymous
	segs []string // unescaped path segments after /a
	body []byte
}

// serveREST answers a REST call: faults first, then routing on the
// escaped path, so that %2F inside a segment stays inside it.
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request, who *account) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "%v", err))
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() { s.logRequest(r, who, body, rec.status) }()
	if !s.applyFault(rec, r) {
		return
	}
	escaped := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	if escaped == "a" || strings.HasPrefix(escaped, "a/") {
		escaped = strings.TrimPrefix(strings.TrimPrefix(escaped, "a"), "/")
	}
	var segs []string
	for _, seg := range strings.Split(escaped, "/") {
		u, err := url.PathUnescape(seg)
		if err != nil {
			writeError(rec, errf(http.StatusBadRequest, "Invalid URL: %v", err))
			return
		}
		segs = append(segs, u)
	}
	if who == nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(rec, errf(http.StatusForbidden, "Authentication required"))
		return
	}
	s.route(&restRequest{w: rec, r: r, who: who, segs: segs, body: body})
}

// statusRecorder remembers the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// route dispatches on method and path shape.
func (s *Server) route(q *restRequest) {
	segs, m := q.segs, q.r.Method
	is := func(method string, shape ...string) bool {
		if m != method && !(method == http.MethodGet && m == http.MethodHead) {
			return false
		}
		if len(segs) != len(shape) {
			return false
		}
		for i, want := range shape {
			if want != "*" && segs[i] != want {
				return false
			}
		}
		return true
	}
	switch {
	case is("GET", "config", "server", "version"):
		writeJSON(q, http.StatusOK, "3.9.1")
	case is("GET", "accounts", "*"):
		s.getAccount(q, segs[1])
	case is("GET", "changes", "") || is("GET", "changes"):
		s.queryChanges(q)
	case is("GET", "changes", "*"):
		s.getChange(q, segs[1], false)
	case is("GET", "changes", "*", "detail"):
		s.getChange(q, segs[1], true)
	case is("POST", "changes", "*", "submit"):
		s.postSubmit(q, segs[1], "current", false)
	case is("POST", "changes", "*", "revisions", "*", "submit"):
		s.postSubmit(q, segs[1], segs[3], true)
	case is("POST", "changes", "*", "revisions", "*", "review"):
		s.postReview(q, segs[1], segs[3])
	case is("GET", "changes", "*", "revisions", "*", "related"):
		s.getRelated(q, segs[1], segs[3])
	case is("GET", "changes", "*", "revisions", "*", "commit"):
		s.getCommit(q, segs[1], segs[3])
	case is("POST", "changes", "*", "revisions", "*", "test.submit_rule"):
		s.testSubmitRule(q, segs[1], segs[3])
	case is("POST", "changes", "*", "abandon"), is("POST", "changes", "*", "restore"),
		is("POST", "changes", "*", "wip"), is("POST", "changes", "*", "ready"),
		is("POST", "changes", "*", "private"), is("DELETE", "changes", "*", "private"):
		s.postState(q, segs[1], segs[2])
	case is("DELETE", "changes", "*", "reviewers", "*", "votes", "*"):
		s.deleteVoteREST(q, segs[1], segs[3], segs[5])
	case is("GET", "projects", "*"):
		s.getProject(q, segs[1])
	case is("GET", "projects", "*", "config"):
		s.getProjectConfig(q, segs[1])
	case is("GET", "projects", "*", "branches", "*"):
		s.getBranch(q, segs[1], segs[3])
	case is("GET", "projects", "*", "branches", "*", "files", "*", "content"):
		s.getBranchFile(q, segs[1], segs[3], segs[5])
	default:
		writeError(q.w, errf(http.StatusNotFound, "Not Found"))
	}
}

// writeJSON answers with Gerrit's )]}' prefix, compact unless the client
// asks pp=1, as Gerrit 3.4 and later do.
func writeJSON(q *restRequest, status int, v any) {
	h := q.w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Content-Disposition", "attachment")
	h.Set("X-Content-Type-Options", "nosniff")
	q.w.WriteHeader(status)
	_, _ = io.WriteString(q.w, ")]}'\n")
	enc := json.NewEncoder(q.w)
	enc.SetEscapeHTML(false)
	if v := q.r.URL.Query(); v.Get("pp") == "1" || v.Get("prettyPrint") == "true" {
		enc.SetIndent("", "  ")
	}
	_ = enc.Encode(v)
}

// writeError answers with Gerrit's plain-text error body.
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Message: "Internal server error: " + err.Error()}
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	msg := e.Message
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	_, _ = io.WriteString(w, msg)
}

// decodeInput reads a JSON request body; an empty body is {}.
func decodeInput(q *restRequest, v any) error {
	if len(strings.TrimSpace(string(q.body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(q.body, v); err != nil {
		return errf(http.StatusBadRequest, "Invalid JSON input: %v", err)
	}
	return nil
}

// findChangeLocked resolves a change id: number, project~number,
// project~branch~Change-Id or a bare Change-Id.
func (s *Server) findChangeLocked(id string) (*change, error) {
	notFound := errf(http.StatusNotFound, "Not found: %s", id)
	parts := strings.Split(id, "~")
	switch len(parts) {
	case 1:
		if n, err := strconv.Atoi(id); err == nil {
			if c := s.changes[n]; c != nil {
				return c, nil
			}
			return nil, notFound
		}
		var found *change
		for _, c := range s.changes {
			if c.changeID == id {
				if found != nil {
					return nil, errf(http.StatusNotFound, "Multiple changes found for %s", id)
				}
				found = c
			}
		}
		if found == nil {
			return nil, notFound
		}
		return found, nil
	case 2:
		n, err := strconv.Atoi(parts[1])
		if c := s.changes[n]; err == nil && c != nil && c.project.name == parts[0] {
			return c, nil
		}
	case 3:
		branch := strings.TrimPrefix(parts[1], "refs/heads/")
		for _, c := range s.changes {
			if c.project.name == parts[0] && c.branch == branch && c.changeID == parts[2] {
				return c, nil
			}
		}
	}
	return nil, notFound
}

// findRevision resolves a revision id: current, a patchset number (up to
// three digits) or a commit, possibly abbreviated to four digits or more.
func findRevision(c *change, id string) (*patchset, error) {
	if id == "current" || id == "" {
		return c.current(), nil
	}
	if n, err := strconv.Atoi(id); err == nil && len(id) < 4 {
		if n > 0 && n <= len(c.patchsets) {
			return c.patchsets[n-1], nil
		}
		return nil, errf(http.StatusNotFound, "Not found: %s", id)
	}
	if len(id) >= 4 {
		for _, ps := range c.patchsets {
			if strings.HasPrefix(ps.rev, id) {
				return ps, nil
			}
		}
	}
	return nil, errf(http.StatusNotFound, "Not found: %s", id)
}

// lookup resolves a change and a revision with s.mu held, answering the
// error itself; ok is false if it did.
func (s *Server) lookup(q *restRequest, changeID, revID string) (*change, *patchset, bool) {
	c, err := s.findChangeLocked(changeID)
	if err == nil && c.private && q.who == nil {
		err = errf(http.StatusNotFound, "Not found: %s", changeID)
	}
	if err != nil {
		writeError(q.w, err)
		return nil, nil, false
	}
	ps, err := findRevision(c, revID)
	if err != nil {
		writeError(q.w, err)
		return nil, nil, false
	}
	return c, ps, true
}

// accountInfo is Gerrit's AccountInfo; without DETAILED_ACCOUNTS only the
// id is set.
type accountInfo struct {
	AccountID   int    `json:"_account_id"`
	Name        string `json:"name,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Email       string `json:"email,omitempty"`
	Username    string `json:"username,omitempty"`
}

func accountJSON(a *account, detailed bool) *accountInfo {
	if a == nil {
		return nil
	}
	if !detailed {
		return &accountInfo{AccountID: a.ID}
	}
	return &accountInfo{AccountID: a.ID, Name: a.Name, Email: a.Email, Username: a.Username}
}

// getAccount answers GET /accounts/{self|id|username}.
func (s *Server) getAccount(q *restRequest, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a *account
	switch n, err := strconv.Atoi(id); {
	case id == "self":
		if q.who == nil {
			writeError(q.w, errf(http.StatusForbidden, "Authentication required"))
			return
		}
		a = q.who
	case err == nil:
		a = s.accountByID(n)
	default:
		a = s.accounts[id]
	}
	if a == nil {
		writeError(q.w, errf(http.StatusNotFound, "Account '%s' not found", id))
		return
	}
	writeJSON(q, http.StatusOK, accountJSON(a, true))
}

// getProject answers GET /projects/{name} with a ProjectInfo.
func (s *Server) getProject(q *restRequest, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(name)
	if err != nil {
		writeError(q.w, err)
		return
	}
	writeJSON(q, http.StatusOK, map[string]any{
		"id": url.QueryEscape(p.name), "name": p.name, "parent": "All-Projects", "state": "ACTIVE",
	})
}

// getProjectConfig answers GET /projects/{name}/config with the parts of a
// ConfigInfo that concern submitting: the effective submit type (Gerrit 3
// writes it as default_submit_type, older servers as submit_type) and
// whether content merges are allowed (always, in the fake).
func (s *Server) getProjectConfig(q *restRequest, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(name)
	if err != nil {
		writeError(q.w, err)
		return
	}
	t := string(p.submitType)
	writeJSON(q, http.StatusOK, map[string]any{
		"default_submit_type": map[string]any{"value": t, "configured_value": t, "inherited_value": "MERGE_IF_NECESSARY"},
		"submit_type":         t,
		"use_content_merge":   map[string]any{"value": true, "configured_value": "TRUE", "inherited_value": true},
	})
}

// branchRef completes a branch id to a ref.
func branchRef(b string) string {
	if strings.HasPrefix(b, "refs/") {
		return b
	}
	return "refs/heads/" + b
}

// getBranch answers GET /projects/{name}/branches/{branch} (BranchInfo).
func (s *Server) getBranch(q *restRequest, name, branch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(name)
	if err != nil {
		writeError(q.w, err)
		return
	}
	ref := branchRef(branch)
	rev, err := p.repo.resolve(ref)
	if err == nil && rev == "" {
		err = errf(http.StatusNotFound, "Not found: %s", branch)
	}
	if err != nil {
		writeError(q.w, err)
		return
	}
	writeJSON(q, http.StatusOK, map[string]any{"ref": ref, "revision": rev, "can_delete": false})
}

// getBranchFile answers GET /projects/{p}/branches/{b}/files/{f}/content
// as Gerrit does: base64 text, no JSON prefix.
func (s *Server) getBranchFile(q *restRequest, name, branch, file string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(name)
	if err != nil {
		writeError(q.w, err)
		return
	}
	rev, err := p.repo.resolve(branchRef(branch))
	if err == nil && rev == "" {
		err = errf(http.StatusNotFound, "Not found: %s", branch)
	}
	var data []byte
	if err == nil {
		var found bool
		data, found, err = p.repo.readFile(rev, file)
		if err == nil && !found {
			err = errf(http.StatusNotFound, "Not found: %s", file)
		}
	}
	if err != nil {
		writeError(q.w, err)
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", "text/plain; charset=ISO-8859-1")
	h.Set("Content-Disposition", "attachment")
	h.Set("X-FYI-Content-Encoding", "base64")
	h.Set("X-FYI-Content-Type", "text/plain")
	q.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(q.w, base64.StdEncoding.EncodeToString(data))
}
