package gerrit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fixtureDir = "../testdata/gerrit/events"

func readFixture(tb testing.TB, dir, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	if bytes.Count(b, []byte("\n")) > 1 {
		tb.Fatalf("%s: want one event on one line", name)
	}
	return b
}

func parseFixture(tb testing.TB, name string) *Event {
	tb.Helper()
	ev, err := ParseEvent(readFixture(tb, fixtureDir, name))
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return ev
}

// summary is what a table row asserts about a parsed event.
type summary struct {
	Type      string
	Created   int64
	Project   string // top level
	ChangeKey string
	Change    string // change project~number
	Patchset  int64
	Revision  string
	RefUpdate string // project refName oldRev newRev
	Accounts  string // the event's top-level accounts, role:username
	Approvals string // label=value, with <-oldValue when sent
}

func summarize(ev *Event) summary {
	s := summary{Type: ev.Type, Created: int64(ev.EventCreatedOn), Project: string(ev.Project), ChangeKey: ev.ChangeKey.String()}
	if c := ev.Change; c != nil {
		s.Change = fmt.Sprintf("%s~%d", c.Project, c.Number)
	}
	if ps := ev.PatchSet; ps != nil {
		s.Patchset, s.Revision = int64(ps.Number), ps.Revision
	}
	if r := ev.RefUpdate; r != nil {
		s.RefUpdate = strings.Join([]string{string(r.Project), r.RefName, r.OldRev, r.NewRev}, " ")
	}
	var accts []string
	roles := "uploader author submitter abandoner restorer changer editor reviewer adder remover deleter"
	for i, a := range []*Account{ev.Uploader, ev.Author, ev.Submitter, ev.Abandoner, ev.Restorer, ev.Changer, ev.Editor, ev.Reviewer, ev.Adder, ev.Remover, ev.Deleter} {
		if a != nil {
			accts = append(accts, strings.Fields(roles)[i]+":"+firstOf(a.Username, "<"+a.Name+">"))
		}
	}
	s.Accounts = strings.Join(accts, " ")
	var votes []string
	for _, a := range ev.Approvals {
		v := fmt.Sprintf("%s=%d", a.Type, a.Value)
		if a.OldValue != nil {
			v += fmt.Sprintf("<%d", *a.OldValue)
		}
		votes = append(votes, v)
	}
	s.Approvals = strings.Join(votes, " ")
	return s
}

const (
	fetcherKey = "Iac3f98c992a5f493774182c8b6e78696faf19944"
	fetcherRev = "b227e90dc27ba547e942260156d9fec56601d3a1"
	linterRev  = "3548d28004ab468bff85c6ae2254058c54fe615f"
	baseKey    = "I7cddd0e3a68c1e4feb31a1be4aa05c77c90949a4"
	baseRev    = "efa2b1ccfed092539b42f3115e76eb50309f70f5"
	portalKey  = "I8f42889a63d055ecad672693caa6707c78965e5a"
	zeros      = "0000000000000000000000000000000000000000"
)

func TestParseEventFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want summary
	}{
		{"patchset-created.json", summary{"patchset-created", 1718003601, "infra/fetcher", fetcherKey, "infra/fetcher~4711", 3, fetcherRev, "", "uploader:ada", ""}},
		{"patchset-created-2x-strings.json", summary{"patchset-created", 0, "", "", "tools/linter~812", 2, linterRev, "", "uploader:<Tomas Reed>", ""}},
		{"comment-added-approve.json", summary{"comment-added", 1718007200, "infra/fetcher", fetcherKey, "infra/fetcher~4711", 3, fetcherRev, "", "author:grace", "Code-Review=2<1 Verified=1"}},
		{"comment-added-recheck.json", summary{"comment-added", 1718010800, "infra/fetcher", fetcherKey, "infra/fetcher~4711", 3, fetcherRev, "", "author:grace", "Code-Review=2 Verified=-1"}},
		{"comment-added-2x.json", summary{"comment-added", 0, "", "", "tools/linter~812", 2, linterRev, "", "author:mquill", "Code-Review=2 Verified=-1 Workflow=1"}},
		{"comment-added-2x-repeat.json", summary{"comment-added", 0, "", "", "tools/linter~812", 2, linterRev, "", "author:mquill", "Code-Review=2"}},
		{"change-merged-webhooks.json", summary{"change-merged", 1718190000, "web/portal", "I07f6347a0d18349503aa79aa603fc2cdbc530e2e", "web/portal~5120", 1, "c79e34546b89d5c004892ed460f9e0e5b23892fc", "", "", ""}},
		{"change-merged-2x-strings.json", summary{"change-merged", 0, "", "", "tools/linter~812", 2, linterRev, "", "submitter:mquill", ""}},
		{"change-abandoned.json", summary{"change-abandoned", 1717500000, "infra/base", baseKey, "infra/base~4690", 1, baseRev, "", "abandoner:grace", ""}},
		{"change-restored.json", summary{"change-restored", 1717600000, "infra/base", baseKey, "infra/base~4690", 1, baseRev, "", "restorer:mquill", ""}},
		{"ref-updated-branch.json", summary{"ref-updated", 1718190001, "", "", "", 0, "", "web/portal refs/heads/main 5c68fff9c23e1a94c18190357d24cf7e2149e864 272d1bd454362499e39105ca4ea8e5cf43c67adc", "submitter:seakeeper", ""}},
		{"ref-updated-new-branch.json", summary{"ref-updated", 1718200000, "", "", "", 0, "", "web/portal refs/heads/stable-2.0 " + zeros + " 62e1f60d227193a2ae58c99c9c73701d5f728181", "submitter:ivale", ""}},
		{"ref-updated-change.json", summary{"ref-updated", 1718003600, "", "", "", 0, "", "infra/fetcher refs/changes/11/4711/3 " + zeros + " " + fetcherRev, "submitter:ada", ""}},
		{"ref-updated-change-meta.json", summary{"ref-updated", 1718007200, "", "", "", 0, "", "infra/fetcher refs/changes/11/4711/meta d1d1bd00ef9c932c6bb222d9dd5f7f540d19ca62 66a58350bfcbaa356f92d59738abd92dff7ea6f7", "submitter:grace", ""}},
		{"ref-updated-meta-config.json", summary{"ref-updated", 1718300000, "", "", "", 0, "", "web/portal refs/meta/config 05544e686e39ca07f9132886c0391d4ef424060b 864d29584de99b558b9696f5a4d55b5b387d6717", "submitter:ivale", ""}},
		{"ref-updated-sequences.json", summary{"ref-updated", 0, "", "", "", 0, "", "All-Projects refs/sequences/changes 03eb69a86d3ca6ed22be8f91847f69bfffdd5acf c44f9c29e1151441691558e38dc7edffc4886374", "", ""}},
		{"ref-updated-2x-short.json", summary{"ref-updated", 0, "", "", "", 0, "", "tools/linter master a7dc8b0a11f73b451f8d5eb5429141c149010509 3df99a5351be5263eed3aad0b7a4edba6a48d296", "submitter:mquill", ""}},
		{"topic-changed.json", summary{"topic-changed", 1718004000, "infra/fetcher", fetcherKey, "infra/fetcher~4711", 0, "", "", "changer:ada", ""}},
		{"wip-state-changed.json", summary{"wip-state-changed", 1718400600, "infra/fetcher", "I25920a964909773ddbb78228cf07ae0836b0e5f7", "infra/fetcher~4733", 2, "2112f580f820c8fc2f59aecb64d6edebdc373e26", "", "changer:mquill", ""}},
		{"private-state-changed.json", summary{"private-state-changed", 1718500100, "security/scanner", "If3f4bd1623315effc903e6ff361bfecf5c425873", "security/scanner~77", 1, "c332f5f1a4942de061c7903292411a61aa33dea5", "", "changer:grace", ""}},
		{"hashtags-changed.json", summary{"hashtags-changed", 1718600200, "web/portal", portalKey, "web/portal~5133", 0, "", "", "editor:ivale", ""}},
		{"reviewer-added.json", summary{"reviewer-added", 1718600300, "web/portal", portalKey, "web/portal~5133", 1, "b2d2382e9677991ca38371ebcf1a3f38f85c4e39", "", "reviewer:grace adder:ivale", ""}},
		{"vote-deleted.json", summary{"vote-deleted", 1718011000, "infra/fetcher", fetcherKey, "infra/fetcher~4711", 3, fetcherRev, "", "reviewer:grace remover:mquill", "Code-Review=0<2"}},
		{"project-created.json", summary{"project-created", 1718700000, "", "", "", 0, "", "", "", ""}},
		{"dropped-output.json", summary{"dropped-output", 1718700100, "", "", "", 0, "", "", "", ""}},
		{"ref-replicated.json", summary{"ref-replicated", 1718190005, "web/portal", "", "", 0, "", "", "", ""}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if got := summarize(parseFixture(t, tc.file)); got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseEventExact(t *testing.T) {
	tomas := &Account{Name: "Tomas Reed", Email: "tomas.reed@example.org"}
	ines := &Account{Name: "Ines Vale", Email: "ivale@example.org", Username: "ivale"}
	for _, tc := range []struct {
		file string
		want Event
	}{
		{"comment-added-2x.json", Event{
			Type: "comment-added",
			Change: &Change{Project: "tools/linter", Branch: "master", ID: "I1269c4b1986c465b51e8dd591021b7fd1fe1fa9c", Number: 812,
				Subject: "Lint YAML files too", Owner: tomas, URL: "https://review.example.org/812",
				CommitMessage: "Lint YAML files too\n\nChange-Id: I1269c4b1986c465b51e8dd591021b7fd1fe1fa9c\n"},
			PatchSet: &PatchSet{Number: 2, Revision: linterRev, Parents: []string{"3c4eb9f454d0fd5179041b902c214e871ca2b0f8"},
				Ref: "refs/changes/12/812/2", Uploader: tomas, CreatedOn: 1402000000, Author: tomas, SizeInsertions: 12, SizeDeletions: -4},
			Author: &Account{Name: "Mara Quill", Email: "mquill@example.org", Username: "mquill"},
			Approvals: []Approval{
				{Type: "Code-Review", Description: "Code-Review", Value: 2},
				{Type: "Verified", Description: "Verified", Value: -1},
				{Type: "Workflow", Description: "Workflow", Value: 1},
			},
			Comment: "Patch Set 2: Code-Review=+2 Verified-1\n\nShip it once the linter passes.",
		}},
		{"change-merged-webhooks.json", Event{
			Type: "change-merged", EventCreatedOn: 1718190000, Project: "web/portal", RefName: "refs/heads/main",
			ChangeKey: &ChangeKey{Key: "I07f6347a0d18349503aa79aa603fc2cdbc530e2e"},
			NewRev:    "272d1bd454362499e39105ca4ea8e5cf43c67adc",
			PatchSet: &PatchSet{Number: 1, Revision: "c79e34546b89d5c004892ed460f9e0e5b23892fc", Parents: []string{"dbbbcee564e9b2b2bb77294854c8a0b2fa9d804d"},
				Ref: "refs/changes/20/5120/1", Uploader: ines, CreatedOn: 1718100000, Author: ines, Kind: "REWORK", SizeInsertions: 12},
			Change: &Change{Project: "web/portal", Branch: "main", ID: "I07f6347a0d18349503aa79aa603fc2cdbc530e2e", Number: 5120,
				Subject: "Show queue length on the front page", Owner: ines, URL: "https://review.example.org/c/web/portal/+/5120",
				CommitMessage: "Show queue length on the front page\n\nChange-Id: I07f6347a0d18349503aa79aa603fc2cdbc530e2e\nReviewed-on: https://review.example.org/c/web/portal/+/5120\n",
				CreatedOn:     1718100000, Status: "MERGED"},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := parseFixture(t, tc.file)
			if !reflect.DeepEqual(*got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Errorf("\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestParseEventErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"", "empty line"},
		{" \r\n", "empty line"},
		{`[{"type":"comment-added"}]`, "not a JSON object"},
		{`Connection to review.example.org closed.`, "not a JSON object"},
		{`{"type":"comment-added",`, "invalid JSON at byte 24: unexpected end of JSON input"},
		{`{"type":"comment-added"}{}`, "invalid JSON at byte"},
		{`{}`, `event has no "type"`},
		{`{"type":""}`, `event has no "type"`},
		{`{"type":5}`, "field type: got a JSON number, want string"},
		{`{"type":"ref-updated","refUpdate":"refs/heads/main"}`, "field refUpdate: got a JSON string, want gerrit.RefUpdate"},
		{`{"type":"patchset-created","change":{"number":"12a"}}`, `want an integer or a string holding one, got "12a"`},
		{`{"type":"patchset-created","change":{"number":{"id":1}}}`, `want an integer or a string holding one, got {"id":1}`},
		{`{"type":"patchset-created","project":["a"]}`, `want a project name or {"name": ...}, got ["a"]`},
		{`{"type":"comment-added","approvals":[{"type":"Verified","value":"1.5"}]}`, `got "1.5"`},
	} {
		ev, err := ParseEvent([]byte(tc.line))
		if err == nil {
			t.Errorf("ParseEvent(%q) = %+v, want an error", tc.line, ev)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseEvent(%q): %v, want it to say %q", tc.line, err, tc.want)
		}
	}
}

func TestFlexInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FlexInt
		ok   bool
	}{
		{`12345`, 12345, true}, {`"12345"`, 12345, true}, {`"-1"`, -1, true}, {`"+2"`, 2, true},
		{`""`, 0, true}, {`null`, 7, true}, {`1.7e9`, 1700000000, true}, {`"\u0032"`, 2, true},
		{`-0`, 0, true}, {`"x"`, 0, false}, {`true`, 0, false}, {`{}`, 0, false}, {`1.5`, 0, false},
		{`"99999999999999999999999"`, 0, false}, {`1e300`, 0, false},
	} {
		n := FlexInt(7)
		err := json.Unmarshal([]byte(tc.in), &n)
		if (err == nil) != tc.ok || (tc.ok && n != tc.want) {
			t.Errorf("FlexInt from %s = %d, %v; want %d, ok %v", tc.in, n, err, tc.want, tc.ok)
		}
	}
}

func TestProjectAndChangeKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"project":"infra/fetcher"}`, "infra/fetcher"},
		{`{"project":{"name":"infra/fetcher","parent":"All-Projects"}}`, "infra/fetcher"},
		{`{"project":null}`, ""},
		{`{"project":{}}`, ""},
	} {
		var v struct{ Project Project }
		if err := json.Unmarshal([]byte(tc.in), &v); err != nil || string(v.Project) != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.in, v.Project, err, tc.want)
		}
	}
	var nilKey *ChangeKey
	for _, tc := range []struct {
		k    *ChangeKey
		want string
	}{{nilKey, ""}, {&ChangeKey{ID: "Ia"}, "Ia"}, {&ChangeKey{Key: "Ib"}, "Ib"}, {&ChangeKey{ID: "Ia", Key: "Ib"}, "Ia"}} {
		if got := tc.k.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.k, got, tc.want)
		}
	}
}

// bigEvent is a comment-added whose comment makes the line about n bytes.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"type":"comment-added","change":{"project":{"name":"p"},"number":"1"},"approvals":[{"type":"Verified","value":"+1"}],"comment":"Patch Set 1: Verified+1"}`))
	f.Add([]byte("{\"type\":\"dropped-output\"}\r\n\r\n{\"type\":\"ref-updated\",\"refUpdate\":{\"refName\":\"master\",\"project\":\"p\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ev, err := ParseEvent(data); err == nil {
			if ev.Type == "" {
				t.Fatalf("parsed an event without a type: %q", data)
			}
			te, ok := Normalize(ev)
			checkNormalized(t, ev, te, ok)
			_ = DependsOnOf(ev)
		}
		d := NewDecoder(bytes.NewReader(data))
		d.SetMaxLineSize(512)
		last := int64(-1)
		for {
			_, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var le *LineError
			if err != nil && !errors.As(err, &le) {
				t.Fatalf("Next: %v", err)
			}
			if off := d.Offset(); off <= last || off >= int64(len(data)) {
				t.Fatalf("offset %d after %d in %d bytes", off, last, len(data))
			}
			last = d.Offset()
		}
		if s := d.Stats(); s.Lines != s.Events+s.Unknown+s.Malformed {
			t.Fatalf("stats %+v do not add up", s)
		}
	})
}
