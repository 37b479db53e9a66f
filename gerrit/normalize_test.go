package gerrit

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// checkNormalized asserts the invariants of Normalize's answer for ev.
func checkNormalized(t *testing.T, ev *Event, te *pipeline.TriggerEvent, ok bool) {
	t.Helper()
	if !ok {
		if te != nil {
			t.Fatalf("not ok, but returned %+v", te)
		}
		return
	}
	switch {
	case te == nil || te.Type == "" || te.Project == "":
		t.Fatalf("normalised event without a type or project: %+v", te)
	case te.Type != ev.Type || !ev.Known() || ev.Type == TypeDroppedOutput:
		t.Fatalf("normalised a %q event as %q", ev.Type, te.Type)
	case te.Type == TypeRefUpdated && (te.Change != nil || !strings.HasPrefix(te.Ref, "refs/") || IgnoredRef(te.Ref)):
		t.Fatalf("bad ref update %+v", te)
	case te.Change != nil && (te.Change.Number <= 0 || te.Change.Project != te.Project || te.Patchset != te.Change.Patchset || te.Patchset < 0):
		t.Fatalf("bad change %+v in %+v", te.Change, te)
	}
}

func ip(n int) *int { return &n }

func fetcher(withPatchset bool) *pipeline.Change {
	c := &pipeline.Change{Project: "infra/fetcher", Branch: "main", Number: 4711, ChangeID: fetcherKey,
		Subject: "Retry mirror fetches that time out", Owner: "ada", URL: "https://review.example.org/c/infra/fetcher/+/4711", Status: pipeline.StatusNew}
	if withPatchset {
		c.Patchset, c.Ref, c.Commit = 3, "refs/changes/11/4711/3", fetcherRev
	}
	return c
}

func linter(status pipeline.Status) *pipeline.Change {
	return &pipeline.Change{Project: "tools/linter", Branch: "master", Number: 812, Patchset: 2, Ref: "refs/changes/12/812/2", Commit: linterRev,
		ChangeID: "I1269c4b1986c465b51e8dd591021b7fd1fe1fa9c", Subject: "Lint YAML files too", URL: "https://review.example.org/812", Status: status}
}

func base(status pipeline.Status) *pipeline.Change {
	return &pipeline.Change{Project: "infra/base", Branch: "main", Number: 4690, Patchset: 1, Ref: "refs/changes/90/4690/1", Commit: baseRev,
		ChangeID: baseKey, Subject: "Pin the base image", Owner: "grace", URL: "https://review.example.org/c/infra/base/+/4690", Status: status}
}

func portal(withPatchset bool) *pipeline.Change {
	c := &pipeline.Change{Project: "web/portal", Branch: "main", Number: 5133, ChangeID: portalKey, Subject: "Dark mode", Owner: "ivale",
		URL: "https://review.example.org/c/web/portal/+/5133", Status: pipeline.StatusNew}
	if withPatchset {
		c.Patchset, c.Ref, c.Commit = 1, "refs/changes/33/5133/1", "b2d2382e9677991ca38371ebcf1a3f38f85c4e39"
	}
	return c
}

type trig = pipeline.TriggerEvent
type vote = pipeline.EventApproval

func v(label string, value int, old *int) vote {
	return vote{Label: label, Value: value, OldValue: old}
}

func TestNormalizeFixtures(t *testing.T) {
	const fetcherRecheck = "Patch Set 3:\n\nrecheck"
	table := []struct {
		file string
		want *trig // nil: ignored
	}{
		{"patchset-created.json", &trig{Type: "patchset-created", Project: "infra/fetcher", Branch: "main", Change: fetcher(true), Patchset: 3, Account: "ada"}},
		{"patchset-created-2x-strings.json", &trig{Type: "patchset-created", Project: "tools/linter", Branch: "master", Change: linter("NEW"), Patchset: 2}},
		{"comment-added-approve.json", &trig{Type: "comment-added", Project: "infra/fetcher", Branch: "main", Change: fetcher(true), Patchset: 3, Account: "grace",
			Comment: "Patch Set 3: Code-Review+2\n\nLooks good, thanks!", Approvals: []vote{v("Code-Review", 2, ip(1)), v("Verified", 1, ip(1))}}},
		{"comment-added-recheck.json", &trig{Type: "comment-added", Project: "infra/fetcher", Branch: "main", Change: fetcher(true), Patchset: 3, Account: "grace",
			Comment: fetcherRecheck, Approvals: []vote{v("Code-Review", 2, ip(2)), v("Verified", -1, ip(-1))}}},
		{"comment-added-2x.json", &trig{Type: "comment-added", Project: "tools/linter", Branch: "master", Change: linter(""), Patchset: 2, Account: "mquill",
			Comment: "Patch Set 2: Code-Review=+2 Verified-1\n\nShip it once the linter passes.", Approvals: []vote{v("Code-Review", 2, nil), v("Verified", -1, nil), v("Workflow", 1, ip(1))}}},
		{"comment-added-2x-repeat.json", &trig{Type: "comment-added", Project: "tools/linter", Branch: "master", Change: linter(""), Patchset: 2, Account: "mquill",
			Comment: "Patch Set 2:\n\nrecheck", Approvals: []vote{v("Code-Review", 2, ip(2))}}},
		{"change-merged-webhooks.json", &trig{Type: "change-merged", Project: "web/portal", Branch: "main", NewRev: "272d1bd454362499e39105ca4ea8e5cf43c67adc", Patchset: 1,
			Change: &pipeline.Change{Project: "web/portal", Branch: "main", Number: 5120, Patchset: 1, Ref: "refs/changes/20/5120/1", Commit: "c79e34546b89d5c004892ed460f9e0e5b23892fc",
				ChangeID: "I07f6347a0d18349503aa79aa603fc2cdbc530e2e", Subject: "Show queue length on the front page", Owner: "ivale",
				URL: "https://review.example.org/c/web/portal/+/5120", Status: "MERGED"}}},
		{"change-merged-2x-strings.json", &trig{Type: "change-merged", Project: "tools/linter", Branch: "master", Change: linter("MERGED"), Patchset: 2, Account: "mquill"}},
		{"change-abandoned.json", &trig{Type: "change-abandoned", Project: "infra/base", Branch: "main", Change: base("ABANDONED"), Patchset: 1, Account: "grace"}},
		{"change-restored.json", &trig{Type: "change-restored", Project: "infra/base", Branch: "main", Change: base("NEW"), Patchset: 1, Account: "mquill"}},
		{"ref-updated-branch.json", &trig{Type: "ref-updated", Project: "web/portal", Branch: "main", Ref: "refs/heads/main",
			OldRev: "5c68fff9c23e1a94c18190357d24cf7e2149e864", NewRev: "272d1bd454362499e39105ca4ea8e5cf43c67adc", Account: "seakeeper"}},
		{"ref-updated-new-branch.json", &trig{Type: "ref-updated", Project: "web/portal", Branch: "stable-2.0", Ref: "refs/heads/stable-2.0",
			OldRev: zeros, NewRev: "62e1f60d227193a2ae58c99c9c73701d5f728181", Account: "ivale"}},
		{"ref-updated-2x-short.json", &trig{Type: "ref-updated", Project: "tools/linter", Branch: "master", Ref: "refs/heads/master",
			OldRev: "a7dc8b0a11f73b451f8d5eb5429141c149010509", NewRev: "3df99a5351be5263eed3aad0b7a4edba6a48d296", Account: "mquill"}},
		{"ref-updated-change.json", nil},
		{"ref-updated-change-meta.json", nil},
		{"ref-updated-meta-config.json", nil},
		{"ref-updated-sequences.json", nil},
		{"topic-changed.json", &trig{Type: "topic-changed", Project: "infra/fetcher", Branch: "main", Change: fetcher(false), Account: "ada"}},
		{"wip-state-changed.json", &trig{Type: "wip-state-changed", Project: "infra/fetcher", Branch: "main", Patchset: 2, Account: "mquill",
			Change: &pipeline.Change{Project: "infra/fetcher", Branch: "main", Number: 4733, Patchset: 2, Ref: "refs/changes/33/4733/2", Commit: "2112f580f820c8fc2f59aecb64d6edebdc373e26",
				ChangeID: "I25920a964909773ddbb78228cf07ae0836b0e5f7", Subject: "Parallel fetches", Owner: "mquill",
				URL: "https://review.example.org/c/infra/fetcher/+/4733", Status: "NEW", WIP: true}}},
		{"private-state-changed.json", &trig{Type: "private-state-changed", Project: "security/scanner", Branch: "main", Patchset: 1, Account: "grace",
			Change: &pipeline.Change{Project: "security/scanner", Branch: "main", Number: 77, Patchset: 1, Ref: "refs/changes/77/77/1", Commit: "c332f5f1a4942de061c7903292411a61aa33dea5",
				ChangeID: "If3f4bd1623315effc903e6ff361bfecf5c425873", Subject: "Fix path traversal in the archive reader", Owner: "grace",
				URL: "https://review.example.org/c/security/scanner/+/77", Status: "NEW", Private: true}}},
		{"hashtags-changed.json", &trig{Type: "hashtags-changed", Project: "web/portal", Branch: "main", Change: portal(false), Account: "ivale"}},
		{"reviewer-added.json", &trig{Type: "reviewer-added", Project: "web/portal", Branch: "main", Change: portal(true), Patchset: 1, Account: "ivale"}},
		{"vote-deleted.json", &trig{Type: "vote-deleted", Project: "infra/fetcher", Branch: "main", Change: fetcher(true), Patchset: 3, Account: "mquill",
			Comment: "Removed Code-Review+2 by Grace Hopper <grace@example.org>\n", Approvals: []vote{v("Code-Review", 0, ip(2))}}},
		{"project-created.json", &trig{Type: "project-created", Project: "infra/mirror-tools", Branch: "main"}},
		{"dropped-output.json", nil},
		{"ref-replicated.json", nil},
	}
	if files, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json")); len(files) != len(table) {
		t.Errorf("%d fixtures in %s, %d in this table", len(files), fixtureDir, len(table))
	}
	for _, tc := range table {
		t.Run(tc.file, func(t *testing.T) {
			ev := parseFixture(t, tc.file)
			got, ok := Normalize(ev)
			checkNormalized(t, ev, got, ok)
			if ok != (tc.want != nil) || !reflect.DeepEqual(got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Errorf("ok %v\n got %s\nwant %s", ok, g, w)
			}
		})
	}
}

func TestNewlyGrantedVotes(t *testing.T) {
	old := func(s string) *FlexInt { n := FlexInt(0); _ = json.Unmarshal([]byte(s), &n); return &n }
	for _, tc := range []struct {
		name, comment, label string
		value                FlexInt
		oldValue             *FlexInt
		want                 *int // the normalised OldValue
	}{
		{"new server, changed", "Patch Set 1: Code-Review+2", "Code-Review", 2, old(`"1"`), ip(1)},
		{"new server, unchanged", "Patch Set 1: Code-Review+2", "Code-Review", 2, old(`"2"`), ip(2)},
		{"new server, oldValue wins over the header", "Patch Set 1:\n\nrecheck", "Code-Review", 2, old(`"0"`), ip(0)},
		{"old server, header names it", "Patch Set 4: Code-Review+2 Verified+1\n\nThanks", "Verified", 1, nil, nil},
		{"old server, header names another value", "Patch Set 4: Code-Review+1", "Code-Review", 2, nil, ip(2)},
		{"old server, header names other labels", "Patch Set 4: Verified+1", "Code-Review", 2, nil, ip(2)},
		{"old server, plain comment", "Patch Set 4:\n\nrecheck", "Code-Review", 2, nil, ip(2)},
		{"old server, no header", "recheck", "Code-Review", 2, nil, ip(2)},
		{"old server, header not on the first line", "recheck\nPatch Set 4: Code-Review+2", "Code-Review", 2, nil, ip(2)},
		{"equals form", "Patch Set 4: Code-Review=+2", "Code-Review", 2, nil, nil},
		{"equals form without sign", "Patch Set 4: Code-Review=2", "Code-Review", 2, nil, nil},
		{"negative on a hyphenated label", "Patch Set 4: Code-Review-2", "Code-Review", -2, nil, nil},
		{"removal", "Patch Set 4: -Code-Review", "Code-Review", 0, nil, nil},
		{"vote on push", "Uploaded patch set 5: Code-Review+2.", "Code-Review", 2, nil, nil},
		{"label case", "Patch Set 4: code-review+2", "Code-Review", 2, nil, nil},
		{"comment count on the header line", "Patch Set 4: Code-Review+2 (1 comment)", "Code-Review", 2, nil, nil},
		{"CRLF", "Patch Set 4: Verified+1\r\n\r\nok", "Verified", 1, nil, nil},
		{"legacy category id", "Patch Set 4: Code-Review+1", "CRVW", 1, nil, nil},
		{"value descriptions of Gerrit 2.5", "Patch Set 4: Looks good to me, approved", "CRVW", 2, nil, ip(2)},
	} {
		ev := &Event{Type: TypeCommentAdded, Comment: tc.comment, Approvals: []Approval{{Type: tc.label, Value: tc.value, OldValue: tc.oldValue}}}
		got := eventApprovals(ev)
		if len(got) != 1 || !reflect.DeepEqual(got[0].OldValue, tc.want) || got[0].Value != int(tc.value) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			t.Errorf("%s: got %s, want oldValue %s", tc.name, g, w)
		}
	}
	if got := eventApprovals(&Event{Approvals: []Approval{{Value: 1}}}); len(got) != 0 {
		t.Errorf("a vote without a label: %+v", got)
	}
}

// TestNormalizedEventsDriveTheCore runs normalised events through the core
// with check and gate pipelines as in the example configuration: an
// approval triggers the gate, "recheck" on an approved change only check.
func TestNormalizedEventsDriveTheCore(t *testing.T) {
	cfg, err := pipeline.ParseConfig("pipelines.yaml", []byte(`
pipelines:
  - name: check
    manager: independent
    trigger:
      - event: [patchset-created, change-restored]
      - event: [comment-added]
        comment: '(?im)^\s*recheck\s*$'
  - name: gate
    manager: dependent
    trigger:
      - event: [comment-added]
        approval:
          - {label: Code-Review, value: [2]}
    report:
      success: {submit: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pipeline.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"patchset-created.json":        "check",
		"comment-added-approve.json":   "gate",
		"comment-added-recheck.json":   "check",
		"comment-added-2x.json":        "gate",
		"comment-added-2x-repeat.json": "check",
		"vote-deleted.json":            "",
		"change-restored.json":         "check",
	} {
		te, ok := Normalize(parseFixture(t, file))
		if !ok {
			t.Fatalf("%s not normalised", file)
		}
		seen := map[string]bool{}
		for _, a := range eng.Apply(pipeline.NewState(), pipeline.Event{Time: time.Unix(1718100000, 0), Trigger: te}) {
			if a.Kind != pipeline.ActNotice {
				seen[a.Pipeline] = true
			}
		}
		var got []string
		for p := range seen {
			got = append(got, p)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != want {
			t.Errorf("%s enqueued in %q, want %q", file, got, want)
		}
	}
}

func TestIgnoredRef(t *testing.T) {
	for ref, want := range map[string]bool{
		"refs/heads/main": false, "refs/tags/v1.0": false, "refs/notes/review": false, "refs/staging/dev": false,
		"refs/changes/11/4711/3": true, "refs/changes/11/4711/meta": true, "refs/changes/11/4711/robot-comments": true,
		"refs/meta/config": true, "refs/meta/external-ids": true, "refs/users/01/1000001": true, "refs/cache-automerge/ab/cdef": true,
		"refs/sequences/changes": true, "refs/draft-comments/11/4711/1000001": true, "refs/starred-changes/11/4711/1000001": true,
		"refs/groups/fa/fa1234": true, "refs/deleted-groups/fa/fa1234": true,
	} {
		if got := IgnoredRef(ref); got != want {
			t.Errorf("IgnoredRef(%q) = %v", ref, got)
		}
	}
}

func TestDependsOnOf(t *testing.T) {
	got := DependsOnOf(parseFixture(t, "patchset-created.json"))
	want := []pipeline.DependsOn{
		{Kind: pipeline.DependsOnURL, Raw: "https://review.example.org/c/infra/base/+/4702", Project: "infra/base", Number: 4702, Host: "review.example.org"},
		{Kind: pipeline.DependsOnChangeID, Raw: "I2e20e2b7bf8b3544d01ab8da3739ba34a7138f6b", ChangeID: "I2e20e2b7bf8b3544d01ab8da3739ba34a7138f6b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := DependsOnOf(parseFixture(t, "ref-updated-branch.json")); got != nil {
		t.Errorf("ref update: %+v", got)
	}
	if got := DependsOnOf(nil); got != nil {
		t.Errorf("nil: %+v", got)
	}
}

// unknownShared are the types of the shared corpus Seakeeper does not
// recognise: a Qt fork event and replication-plugin events.
var unknownShared = map[string]bool{
	"change-deferred": true, "ref-replicated": true, "ref-replication-scheduled": true, "ref-replication-done": true,
}
