package gerrittest

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRESTPrefixAndPrettyPrinting(t *testing.T) {
	s, _ := newFake(t, "p", MergeIfNecessary)
	mustChange(t, s, ChangeSpec{Project: "p"})

	status, h, body := call(t, s, "GET", "/changes/?q=status:open", false, nil)
	if status != 200 || h.Get("Content-Type") != "application/json; charset=UTF-8" {
		t.Fatalf("status %d, content type %q", status, h.Get("Content-Type"))
	}
	if !strings.HasPrefix(body, ")]}'\n[{") {
		t.Errorf("compact JSON with prefix expected, got %q", body[:20])
	}
	_, _, body = call(t, s, "GET", "/changes/?q=status:open&pp=1", false, nil)
	if !strings.HasPrefix(body, ")]}'\n[\n  {\n ") {
		t.Errorf("pretty JSON expected with pp=1, got %q", body[:20])
	}
}

func TestRESTAuthentication(t *testing.T) {
	s, _ := newFake(t, "p", MergeIfNecessary)
	get := func(user, pass string) (int, http.Header, string) {
		req, _ := http.NewRequest("GET", s.URL()+"/a/accounts/self", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = strings.NewReader("").WriteTo(&b)
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		return resp.StatusCode, resp.Header, string(buf[:n])
	}
	for _, c := range [][2]string{{"", ""}, {"seakeeper", "wrong"}, {"nobody", "secret"}} {
		status, h, body := get(c[0], c[1])
		if status != 401 || h.Get("WWW-Authenticate") != `Basic realm="Gerrit Code Review"` || body != "Unauthorized\n" {
			t.Errorf("%v: %d %q %q", c, status, h.Get("WWW-Authenticate"), body)
		}
	}
	status, _, body := get("seakeeper", "secret")
	var acc accountInfo
	decodeJSON(t, body, &acc)
	if status != 200 || acc.Username != "seakeeper" || acc.AccountID != 1000000 {
		t.Errorf("self: %d %+v", status, acc)
	}
	// Anonymous reads work, anonymous writes do not.
	if status, _, _ := call(t, s, "GET", "/projects/p", false, nil); status != 200 {
		t.Errorf("anonymous GET: %d", status)
	}
	status, h, body := call(t, s, "POST", "/changes/1/submit", false, map[string]any{})
	if status != 403 || body != "Authentication required\n" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("anonymous POST: %d %q", status, body)
	}
	// A second account with its own password.
	s.AddAccount("alice", "Alice", "alice@example.com", "pw")
	if status, _, _ := get("alice", "pw"); status != 200 {
		t.Errorf("alice: %d", status)
	}
}

func TestRESTEscapedRoutingAndIDs(t *testing.T) {
	s, _ := newFake(t, "mediawiki/core", MergeIfNecessary, func(o *Options) { o.FirstChange = 12345 })
	ch := mustChange(t, s, ChangeSpec{Project: "mediawiki/core", Subject: "Fix it"})
	if ch.Number != 12345 {
		t.Fatalf("number %d", ch.Number)
	}
	for _, id := range []string{"mediawiki%2Fcore~12345", "12345", "mediawiki%2Fcore~master~" + ch.ChangeID, ch.ChangeID} {
		status, _, body := call(t, s, "GET", "/changes/"+id+"/detail", true, nil)
		var ci changeInfo
		if status != 200 {
			t.Errorf("%s: %d %s", id, status, body)
			continue
		}
		decodeJSON(t, body, &ci)
		if ci.Number != 12345 || ci.ID != "mediawiki%2Fcore~12345" || ci.Project != "mediawiki/core" || ci.Subject != "Fix it" {
			t.Errorf("%s: %+v", id, ci)
		}
	}
	for _, id := range []string{"mediawiki/core~12345", "other~12345", "99", "mediawiki%2Fcore~master~Ideadbeef"} {
		if status, _, body := call(t, s, "GET", "/changes/"+id+"/detail", true, nil); status != 404 {
			t.Errorf("%s: %d %s", id, status, body)
		}
	}
	status, _, body := call(t, s, "GET", "/changes/mediawiki%2Fcore~99", true, nil)
	if status != 404 || body != "Not found: mediawiki/core~99\n" {
		t.Errorf("not found: %d %q", status, body)
	}

	tip, err := s.Branch("mediawiki/core", "master")
	must(t, err)
	status, _, body = call(t, s, "GET", "/projects/mediawiki%2Fcore/branches/master", true, nil)
	var bi struct{ Ref, Revision string }
	decodeJSON(t, body, &bi)
	if status != 200 || bi.Ref != "refs/heads/master" || bi.Revision != tip {
		t.Errorf("branch: %d %+v, tip %s", status, bi, tip)
	}
	if status, _, _ := call(t, s, "GET", "/projects/mediawiki/core/branches/master", true, nil); status != 404 {
		t.Errorf("unescaped project routed: %d", status)
	}

	_, err = s.PutConfigFile("mediawiki/core", "seakeeper.yaml", "pipelines: {}\n", "admin")
	must(t, err)
	status, h, body := call(t, s, "GET", "/projects/mediawiki%2Fcore/branches/refs%2Fmeta%2Fconfig/files/seakeeper.yaml/content", true, nil)
	dec, err := base64.StdEncoding.DecodeString(body)
	if status != 200 || err != nil || string(dec) != "pipelines: {}\n" || h.Get("X-FYI-Content-Encoding") != "base64" {
		t.Errorf("config file: %d %q (%v)", status, body, err)
	}
	if status, _, body := call(t, s, "GET", "/projects/mediawiki%2Fcore/branches/refs%2Fmeta%2Fconfig/files/nope.yaml/content", true, nil); status != 404 {
		t.Errorf("missing file: %d %q", status, body)
	}
}

func TestRESTChangeInfoOptionsAndTimestamps(t *testing.T) {
	s, clk := newFake(t, "p", MergeIfNecessary)
	ch := mustChange(t, s, ChangeSpec{Project: "p", Owner: "alice", Files: map[string]string{"a.txt": "1\n2\n"}})
	clk.advance(90 * time.Second)
	must(t, s.Approve("p", ch.Number, "Code-Review", 2, "bob"))
	must(t, s.Approve("p", ch.Number, "Verified", -1, "seakeeper"))

	_, _, body := call(t, s, "GET", "/changes/?q=change:1&o=CURRENT_REVISION&o=CURRENT_COMMIT&o=LABELS&o=DETAILED_LABELS&o=DETAILED_ACCOUNTS&o=SUBMITTABLE&o=CURRENT_FILES&o=MESSAGES", true, nil)
	var list []changeInfo
	decodeJSON(t, body, &list)
	if len(list) != 1 {
		t.Fatalf("%d changes", len(list))
	}
	ci := list[0]
	if ci.Created != "2026-11-25 12:00:00.000000000" || ci.Updated != "2026-11-25 12:01:30.000000000" {
		t.Errorf("timestamps %q %q", ci.Created, ci.Updated)
	}
	if ci.Owner.Username != "alice" || ci.Status != "NEW" || ci.SubmitType != "MERGE_IF_NECESSARY" || ci.Insertions != 2 {
		t.Errorf("change %+v", ci)
	}
	if ci.Submittable == nil || *ci.Submittable {
		t.Errorf("submittable %v", ci.Submittable)
	}
	rev := ci.Revisions[ci.CurrentRevision]
	if rev == nil || rev.Number != 1 || rev.Ref != "refs/changes/01/1/1" || rev.Kind != "REWORK" || rev.Commit == nil {
		t.Fatalf("revision %+v", rev)
	}
	if rev.Fetch["anonymous http"].URL != s.URL()+"/p" || rev.Commit.Parents[0].Subject != "Initial empty repository" {
		t.Errorf("fetch %+v commit %+v", rev.Fetch, rev.Commit)
	}
	if rev.Commit.Author.Date != "2026-11-25 12:00:00.000000000" || rev.Files["a.txt"].LinesInserted != 2 || rev.Files["a.txt"].Status != "A" {
		t.Errorf("commit %+v files %+v", rev.Commit, rev.Files)
	}
	cr, v := ci.Labels["Code-Review"], ci.Labels["Verified"]
	if cr.Approved == nil || cr.Approved.Username != "bob" || v.Disliked == nil || v.Blocking {
		t.Errorf("labels %+v %+v", cr, v)
	}
	if len(cr.All) != 2 || cr.All[0].Username != "bob" || cr.All[0].Value != 2 || cr.All[0].Date != "2026-11-25 12:01:30.000000000" {
		t.Errorf("all %+v", cr.All)
	}
	if cr.Values["+2"] != "Looks good to me, approved" || cr.Values[" 0"] != "No score" || ci.PermittedLabels["Verified"][0] != "-2" {
		t.Errorf("values %v permitted %v", cr.Values, ci.PermittedLabels)
	}
	if len(ci.Messages) != 3 || ci.Messages[1].Message != "Patch Set 1: Code-Review+2" {
		t.Errorf("messages %+v", ci.Messages)
	}

	// Without DETAILED_ACCOUNTS, accounts are ids only; without options,
	// no revisions.
	_, _, body = call(t, s, "GET", "/changes/p~1", true, nil)
	var bare map[string]any
	decodeJSON(t, body, &bare)
	if owner := bare["owner"].(map[string]any); len(owner) != 1 || bare["revisions"] != nil || bare["labels"] != nil {
		t.Errorf("bare change %v", bare)
	}
}

func TestRESTQueries(t *testing.T) {
	s, clk := newFake(t, "p", MergeIfNecessary)
	must(t, s.CreateProject("q/r", MergeIfNecessary))
	a := mustChange(t, s, ChangeSpec{Project: "p", Owner: "alice", Topic: "t1"})
	clk.advance(time.Second)
	b := mustChange(t, s, ChangeSpec{Project: "q/r", Owner: "bob"})
	clk.advance(time.Second)
	c := mustChange(t, s, ChangeSpec{Project: "p", Owner: "bob", WIP: true})
	must(t, s.Approve("p", a.Number, "Code-Review", 2, "carol"))
	must(t, s.Approve("p", a.Number, "Verified", 2, "seakeeper"))
	must(t, s.Abandon("q/r", b.Number, "bob", ""))

	cases := map[string]string{
		"status:open":          "3 1",
		"is:open project:p":    "3 1",
		"status:abandoned":     "2",
		"project:q/r":          "2",
		"owner:bob":            "3 2",
		"owner:bob -is:wip":    "2",
		"owner:bob NOT is:wip": "2",
		"(project:p OR status:abandoned) -is:wip": "2 1",
		"label:Code-Review=2":                     "1",
		"label:Code-Review=+2,carol":              "1",
		"label:Code-Review>=1,user=bob":           "",
		"label:Verified=NEED":                     "3 2",
		"is:submittable":                          "1",
		"topic:t1":                                "1",
		"change:2":                                "2",
		"commit:" + a.Current().Revision[:7]:      "1",
		c.ChangeID:                                "3",
		"branch:master status:open":               "3 1",
	}
	for q, want := range cases {
		status, _, body := call(t, s, "GET", "/changes/?q="+url.QueryEscape(q), true, nil)
		if status != 200 {
			t.Errorf("%q: %d %s", q, status, body)
			continue
		}
		var list []changeInfo
		decodeJSON(t, body, &list)
		var got []string
		for _, ci := range list {
			got = append(got, strings.TrimPrefix(ci.ID, url.QueryEscape(ci.Project)+"~"))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%q: got %v, want %s", q, got, want)
		}
	}
	// Paging and several queries.
	_, _, body := call(t, s, "GET", "/changes/?q=status:open&n=1", true, nil)
	var page []changeInfo
	decodeJSON(t, body, &page)
	if len(page) != 1 || page[0].Number != 3 || !page[0].MoreChanges {
		t.Errorf("page %+v", page)
	}
	_, _, body = call(t, s, "GET", "/changes/?q=status:open&n=1&S=1", true, nil)
	page = nil
	decodeJSON(t, body, &page)
	if len(page) != 1 || page[0].Number != 1 || page[0].MoreChanges {
		t.Errorf("page 2 %+v", page)
	}
	_, _, body = call(t, s, "GET", "/changes/?q=change:1&q=change:2", true, nil)
	var lists [][]changeInfo
	decodeJSON(t, body, &lists)
	if len(lists) != 2 || lists[1][0].Number != 2 {
		t.Errorf("lists %+v", lists)
	}
	if status, _, body := call(t, s, "GET", "/changes/?q=age:1d", true, nil); status != 400 || body != "Unsupported operator age:1d\n" {
		t.Errorf("unsupported: %d %q", status, body)
	}
}
