package gerrit

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// restFake is an httptest Gerrit for the REST client's tests: Basic auth
// under /a/ (401 with Gerrit's challenge otherwise), )]}'-prefixed JSON,
// plain-text errors, the endpoints the client uses, and faults on demand.

type fakeRev struct {
	sha, message string
	parents      []string
}

type fakeVote struct {
	label string
	value int
	user  string
}

type fakeChange struct {
	project, branch, changeID, status, owner string
	number                                   int
	wip, private, submittable                bool
	revs                                     []fakeRev // patchset i+1
	votes                                    []fakeVote
}

func (c *fakeChange) cur() fakeRev { return c.revs[len(c.revs)-1] }

type fakeFault struct {
	status     int
	retryAfter string
	body       string
}

type fakeReview struct {
	change   string // project~number
	revision string
	body     map[string]any
}

type restFake struct {
	t          testing.TB
	srv        *httptest.Server
	user, pass string

	mu       sync.Mutex
	changes  []*fakeChange
	branches map[string]string // project + " " + ref → sha
	files    map[string]string // project + " " + path → content
	faults   []fakeFault
	// requests: method + " " + RequestURI of every authenticated request.
	requests []string
	reviews  []fakeReview
	// submit, if set, answers a submit of an open, current change.
	submit    func(c *fakeChange) (int, string)
	noRelated bool
	// hang makes every request wait for its context to end.
	hang bool
	// afterQuery, if set, runs after each query is answered, lock held.
	afterQuery func()
}

const fakePassword = "s3cr3t+/pw"

func newRESTFake(t testing.TB) *restFake {
	f := &restFake{t: t, user: "seakeeper", pass: fakePassword,
		branches: map[string]string{}, files: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /a/changes/{$}", f.query)
	mux.HandleFunc("GET /a/changes/{id}", f.get)
	mux.HandleFunc("GET /a/changes/{id}/revisions/{rev}/related", f.related)
	mux.HandleFunc("POST /a/changes/{id}/revisions/{rev}/review", f.review)
	mux.HandleFunc("POST /a/changes/{id}/revisions/{rev}/submit", f.doSubmit)
	mux.HandleFunc("POST /a/changes/{id}/submit", f.doSubmit)
	mux.HandleFunc("GET /a/projects/{project}/branches/{branch}", f.branch)
	mux.HandleFunc("GET /a/projects/{project}/branches/{branch}/files/{file}/content", f.content)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass || !strings.HasPrefix(r.URL.Path, "/a/") {
			w.Header().Set("WWW-Authenticate", `Basic realm="Gerrit Code Review"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.RequestURI)
		var fault *fakeFault
		if len(f.faults) > 0 {
			fault = &f.faults[0]
			f.faults = f.faults[1:]
		}
		hang := f.hang
		f.mu.Unlock()
		if hang {
			<-r.Context().Done()
			return
		}
		if fault != nil {
			if fault.retryAfter != "" {
				w.Header().Set("Retry-After", fault.retryAfter)
			}
			fakeError(w, fault.status, fault.body)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a client of the fake with short retry waits.
func (f *restFake) client(t testing.TB, mod ...func(*ClientConfig)) *Client {
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(f.pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ClientConfig{URL: f.srv.URL, User: f.user, PasswordFile: pw,
		Timeout: 10 * time.Second, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond,
		WebURL: "https://review.example.org/"}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *restFake) fail(n, status int, retryAfter, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.faults = append(f.faults, fakeFault{status, retryAfter, body})
	}
}

func (f *restFake) add(c *fakeChange) *fakeChange {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.status == "" {
		c.status = "NEW"
	}
	f.changes = append(f.changes, c)
	return c
}

func (f *restFake) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func fakeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	b, _ := json.Marshal(v)
	_, _ = io.WriteString(w, ")]}'\n"+string(b)+"\n")
}

func fakeError(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// find resolves a change id: project~number or a number. Lock held.
func (f *restFake) find(id string) *fakeChange {
	project, num := "", id
	if i := strings.LastIndex(id, "~"); i >= 0 {
		project, num = id[:i], id[i+1:]
	}
	n, _ := strconv.Atoi(num)
	for _, c := range f.changes {
		if c.number == n && (project == "" || c.project == project) {
			return c
		}
	}
	return nil
}

// info renders a ChangeInfo the way Gerrit does for the options asked.
func (f *restFake) info(c *fakeChange, opts []string) map[string]any {
	has := func(o string) bool { return slices.Contains(opts, o) }
	msg := c.cur().message
	m := map[string]any{
		"id":      strings.ReplaceAll(c.project, "/", "%2F") + "~" + c.branch + "~" + c.changeID,
		"project": c.project, "branch": c.branch, "change_id": c.changeID,
		"subject": strings.SplitN(msg, "\n", 2)[0], "status": c.status, "_number": c.number,
		"created": "2024-05-01 10:00:00.000000000", "updated": "2024-05-01 11:00:00.000000000",
	}
	owner := map[string]any{"_account_id": 1000}
	if has("DETAILED_ACCOUNTS") {
		owner["username"], owner["name"] = c.owner, "Owner "+c.owner
	}
	m["owner"] = owner
	if c.wip {
		m["work_in_progress"] = true
	}
	if c.private {
		m["is_private"] = true
	}
	if has("SUBMITTABLE") {
		m["submittable"] = c.submittable
	}
	if has("CURRENT_REVISION") || has("ALL_REVISIONS") {
		revs := map[string]any{}
		for i, r := range c.revs {
			if i != len(c.revs)-1 && !has("ALL_REVISIONS") {
				continue
			}
			ri := map[string]any{"_number": i + 1, "kind": "REWORK",
				"ref": fmt.Sprintf("refs/changes/%02d/%d/%d", c.number%100, c.number, i+1)}
			if has("CURRENT_COMMIT") || has("ALL_COMMITS") {
				var ps []any
				for _, p := range r.parents {
					ps = append(ps, map[string]any{"commit": p, "subject": "parent"})
				}
				ri["commit"] = map[string]any{"parents": ps, "subject": strings.SplitN(r.message, "\n", 2)[0], "message": r.message}
			}
			revs[r.sha] = ri
		}
		m["current_revision"], m["revisions"] = c.cur().sha, revs
	}
	if has("DETAILED_LABELS") {
		labels := map[string]any{}
		for _, v := range c.votes {
			l, _ := labels[v.label].(map[string]any)
			if l == nil {
				l = map[string]any{"all": []any{}, "values": map[string]string{"-2": "no", "0": "meh", "+2": "yes"}}
				labels[v.label] = l
			}
			l["all"] = append(l["all"].([]any), map[string]any{"value": v.value, "_account_id": 1001, "username": v.user})
		}
		m["labels"] = labels
	}
	return m
}

func (f *restFake) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(r.PathValue("id"))
	if c == nil {
		fakeError(w, http.StatusNotFound, "Not found: "+r.PathValue("id"))
		return
	}
	fakeJSON(w, f.info(c, r.URL.Query()["o"]))
}

var fakeTermRE = regexp.MustCompile(`(\w+):("[^"]*"|\{[^}]*\}|[^\s()]+)`)

// query evaluates the searches the client makes: status, project, branch,
// change and commit terms must all hold; of message terms, any.
func (f *restFake) query(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	var out []map[string]any
	for _, c := range slices.Backward(f.changes) {
		ok, anyMsg, msgHit := true, false, false
		for _, t := range fakeTermRE.FindAllStringSubmatch(q.Get("q"), -1) {
			v := strings.Trim(t[2], `"{}`)
			switch t[1] {
			case "status":
				ok = ok && (v == "open") == (c.status == "NEW")
			case "project":
				ok = ok && c.project == v
			case "branch":
				ok = ok && c.branch == v
			case "change":
				ok = ok && c.changeID == v
			case "commit":
				ok = ok && slices.ContainsFunc(c.revs, func(r fakeRev) bool { return r.sha == v })
			case "message":
				anyMsg = true
				msgHit = msgHit || strings.Contains(c.cur().message, v)
			default:
				fakeError(w, http.StatusBadRequest, "Unsupported operator "+t[1])
				return
			}
		}
		if ok && (!anyMsg || msgHit) {
			out = append(out, f.info(c, q["o"]))
		}
	}
	start, _ := strconv.Atoi(q.Get("S"))
	n, _ := strconv.Atoi(q.Get("n"))
	start = min(start, len(out))
	out = out[start:]
	if n > 0 && len(out) > n {
		out = out[:n]
		out[n-1]["_more_changes"] = true
	}
	if out == nil {
		out = []map[string]any{}
	}
	fakeJSON(w, out)
	if f.afterQuery != nil {
		f.afterQuery()
	}
}
