package gerrit

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The restFake's handlers of single changes' revisions and of projects.

// related lists the relation chain of a revision: descendants (changes
// whose current patchset has it as an ancestor), the change, ancestors.
func (f *restFake) related(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(r.PathValue("id"))
	if f.noRelated {
		fakeError(w, http.StatusNotFound, "Not found")
		return
	}
	if c == nil {
		fakeError(w, http.StatusNotFound, "Not found: "+r.PathValue("id"))
		return
	}
	type at struct {
		c  *fakeChange
		ps int
	}
	bySHA := map[string]at{}
	for _, o := range f.changes {
		for i, rev := range o.revs {
			if o.project == c.project {
				bySHA[rev.sha] = at{o, i + 1}
			}
		}
	}
	sha := r.PathValue("rev")
	if sha == "current" {
		sha = c.cur().sha
	}
	ancestors := func(from string) []at {
		var out []at
		for cur, ok := bySHA[from]; ok && len(cur.c.revs[cur.ps-1].parents) > 0; {
			cur, ok = bySHA[cur.c.revs[cur.ps-1].parents[0]]
			if ok {
				out = append(out, cur)
			}
		}
		return out
	}
	var chain []at
	for _, o := range slices.Backward(f.changes) {
		if o != c && o.project == c.project && slices.ContainsFunc(ancestors(o.cur().sha), func(a at) bool { return a.c.revs[a.ps-1].sha == sha }) {
			chain = append(chain, bySHA[o.cur().sha])
		}
	}
	chain = append(chain, bySHA[sha])
	chain = append(chain, ancestors(sha)...)
	entries := []any{}
	if len(chain) > 1 {
		for _, a := range chain {
			rev := a.c.revs[a.ps-1]
			var ps []any
			for _, p := range rev.parents {
				ps = append(ps, map[string]any{"commit": p})
			}
			entries = append(entries, map[string]any{
				"project": a.c.project, "change_id": a.c.changeID, "status": a.c.status,
				"commit":         map[string]any{"commit": rev.sha, "parents": ps, "subject": "s"},
				"_change_number": a.c.number, "_revision_number": a.ps, "_current_revision_number": len(a.c.revs),
			})
		}
	}
	fakeJSON(w, map[string]any{"changes": entries})
}

func (f *restFake) review(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fakeError(w, http.StatusBadRequest, "Invalid JSON: "+err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(r.PathValue("id"))
	if c == nil {
		fakeError(w, http.StatusNotFound, "Not found: "+r.PathValue("id"))
		return
	}
	rev := r.PathValue("rev")
	if rev != "current" && rev != c.cur().sha {
		fakeError(w, http.StatusConflict, "cannot post review on an outdated patch set")
		return
	}
	f.reviews = append(f.reviews, fakeReview{c.project + "~" + strconv.Itoa(c.number), rev, in})
	labels, _ := in["labels"].(map[string]any)
	for l, v := range labels {
		n := int(v.(float64))
		c.votes = slices.DeleteFunc(c.votes, func(x fakeVote) bool { return x.label == l && x.user == f.user })
		c.votes = append(c.votes, fakeVote{l, n, f.user})
	}
	fakeJSON(w, map[string]any{"labels": labels})
}

func (f *restFake) doSubmit(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(r.PathValue("id"))
	if c == nil {
		fakeError(w, http.StatusNotFound, "Not found: "+r.PathValue("id"))
		return
	}
	switch rev := r.PathValue("rev"); {
	case c.status != "NEW":
		fakeError(w, http.StatusConflict, "change is "+strings.ToLower(c.status))
		return
	case rev != "" && rev != "current" && rev != c.cur().sha:
		fakeError(w, http.StatusConflict, "revision "+rev+" is not current revision")
		return
	}
	if f.submit != nil {
		if status, body := f.submit(c); status != http.StatusOK {
			fakeError(w, status, body)
			return
		}
	}
	c.status = "MERGED"
	fakeJSON(w, map[string]any{"status": "MERGED"})
}

func (f *restFake) branch(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, b := r.PathValue("project"), r.PathValue("branch")
	full := b
	if !strings.HasPrefix(b, "refs/") {
		full = "refs/heads/" + b
	}
	sha, ok := f.branches[p+" "+full]
	if !ok {
		fakeError(w, http.StatusNotFound, "Not found: "+b)
		return
	}
	fakeJSON(w, map[string]any{"ref": full, "revision": sha})
}

func (f *restFake) content(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, b, file := r.PathValue("project"), r.PathValue("branch"), r.PathValue("file")
	data, ok := f.files[p+" "+file]
	if _, exists := f.branches[p+" "+b]; !exists || !ok {
		fakeError(w, http.StatusNotFound, "Not found: "+file)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=ISO-8859-1")
	w.Header().Set("X-FYI-Content-Encoding", "base64")
	_, _ = io.WriteString(w, base64.StdEncoding.EncodeToString([]byte(data)))
}
