package gerrit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/seakeeper-ci/seakeeper/internal/fixtures"
)

// Tests over the real-world events captured by other projects from real
// Gerrit servers (../shared/fixtures/gerrit-events, see its SOURCES.md).

func sharedFixtures(t *testing.T) (dir string, names []string) {
	t.Helper()
	dir = fixtures.Shared(t, "fixtures/gerrit-events")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 78 {
		t.Fatalf("%d events in %s, SOURCES.md lists 78", len(files), dir)
	}
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	return dir, names
}

// TestSharedFixturesParse reads every captured real-world event, one by one
// and as one stream.
func TestSharedFixturesParse(t *testing.T) {
	dir, names := sharedFixtures(t)
	var stream bytes.Buffer
	for _, name := range names {
		b := readFixture(t, dir, name)
		ev, err := ParseEvent(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// <source>-<NNN>-<type>.json
		if !strings.HasSuffix(name, "-"+ev.Type+".json") {
			t.Errorf("%s: type %q, not the one the file name says", name, ev.Type)
		}
		if ev.Known() == unknownShared[ev.Type] {
			t.Errorf("%s: Known() = %v for %q", name, ev.Known(), ev.Type)
		}
		stream.Write(bytes.TrimRight(b, "\n"))
		stream.WriteString("\n")
	}
	d := NewDecoder(&stream)
	for {
		if _, err := d.Next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Next: %v", err)
			}
			break
		}
	}
	want := Stats{Lines: 78, Events: 73, Unknown: 5, Malformed: 0, Dropped: 1}
	if got := d.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestSharedFixturesSpotChecks(t *testing.T) {
	dir, _ := sharedFixtures(t)
	for _, tc := range []struct {
		file string
		want summary
	}{
		// comment-added, string votes with oldValue (TVL, Gerrit ~3.2).
		{"tvl-clbot-001-comment-added.json", summary{"comment-added", 1592081929, "depot", "I546c701145fa204b7ba7518a8a56a783588629e0", "depot~244", 3, "6fe272d3f82c6efdfe1167fab98bf918efc03fe5", "", "author:tazjin", "Code-Review=2<0"}},
		// comment-added of an old server: no oldValue, no eventCreatedOn, strings.
		{"qtqa-001-comment-added.json", summary{"comment-added", 0, "", "", "qt/qtdeclarative~236085", 1, "e0f9e7d6792348ab307e67ac0f775bc5abfc6e07", "", "author:qt_sanity_bot", "Sanity-Review=1 Code-Review=-2"}},
		// change-merged with numbers as strings.
		{"qtqa-002-change-merged.json", summary{"change-merged", 0, "", "", "qt/qtbase~235677", 1, "41d29efb4196d5fd447190d3b8ec26d70b9f8eec", "", "submitter:juri.valdmann", ""}},
		{"go-gerrit-001-change-merged.json", summary{"change-merged", 1470000000, "", "", "test~1", 1, zeros, "", "submitter:fbar", ""}},
		// change-merged of the webhooks plugin: project object, changeKey.key.
		{"snix-002-change-merged.json", summary{"change-merged", 1753734843, "snix", "I65b14839a62c4e779136c1c34750d15cedaaddc8", "snix~30605", 2, "be68d899017ff0d79aa7bc9167381dba131342e0", "", "submitter:jade", ""}},
		{"wikibugs2-009-ref-updated.json", summary{"ref-updated", 1533468548, "", "", "", 0, "", "labs/tools/wikibugs2 refs/heads/master ef41d4982dc42d0196cff1e7033945055b4c2f90 c4a7eecd9ab7e550d7a3fa28d11b19afb86980d7", "submitter:jenkins-bot", ""}},
		{"wikibugs2-001-ref-updated.json", summary{"ref-updated", 1530373839, "", "", "", 0, "", "All-Projects refs/sequences/changes b3f27df8de61a84d38a725bf0cecdb9d5a543dec c5e035caecb676a4be872159aed29ac3bf463eef", "", ""}},
		{"buildbot-003-dropped-output.json", summary{"dropped-output", 123, "", "", "", 0, "", "", "", ""}},
		// change.project as an object, no patchSet.
		{"buildbot-004-patchset-created.json", summary{"patchset-created", 1614528683, "", "", "pr~4321", 0, "", "", "", ""}},
		{"gerrit-trigger-001-change-restored.json", summary{"change-restored", 0, "", "", "playback-test~654", 1, "b2b5f7c8fb8f96312d629d4d4f379f34f5b9b651", "", "restorer:scott", ""}},
		{"gerrit-events-004-vote-deleted.json", summary{"vote-deleted", 1418133772, "", "", "project-test~654", 1, "b2b5f7c8fb8f96312d629d4d4f379f34f5b9b651", "", "reviewer:evil remover:evil", "Validated=0<-2"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ev, err := ParseEvent(readFixture(t, dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := summarize(ev); got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// ignoredShared are the captured events Normalize drops: unknown types,
// dropped-output and updates of Gerrit's internal refs.
var ignoredShared = map[string]bool{
	"buildbot-003-dropped-output.json": true, "cdevents-003-ref-updated.json": true, "cdevents-007-ref-updated.json": true,
	"cdevents-009-ref-updated.json": true, "qt-gerritbot2-002-change-deferred.json": true, "qtqa-011-change-deferred.json": true,
	"qtqa-012-ref-updated.json": true, "qtqa-013-ref-updated.json": true, "snix-006-ref-updated.json": true,
	"wikibugs2-001-ref-updated.json": true, "wikibugs2-002-ref-updated.json": true, "wikibugs2-003-ref-updated.json": true,
	"wikibugs2-011-ref-replicated.json": true, "wikibugs2-012-ref-replication-scheduled.json": true,
	"wikibugs2-013-ref-replication-done.json": true, "wikibugs2-015-ref-updated.json": true,
}

func TestSharedFixturesNormalize(t *testing.T) {
	dir, names := sharedFixtures(t)
	for _, name := range names {
		ev, err := ParseEvent(readFixture(t, dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		te, ok := Normalize(ev)
		checkNormalized(t, ev, te, ok)
		if ok == ignoredShared[name] {
			t.Errorf("%s: Normalize ok = %v", name, ok)
		}
	}
	for _, tc := range []struct {
		file, change string // change: the snapshot as "project~number,patchset status"
		want         *trig
	}{
		// Gerrit 3.2: string votes with oldValue.
		{"tvl-clbot-001-comment-added.json", "depot~244,3 NEW", &trig{Type: "comment-added", Project: "depot", Branch: "master", Patchset: 3, Account: "tazjin",
			Comment: "Patch Set 3: Code-Review+2", Approvals: []vote{v("Code-Review", 2, ip(0))}}},
		// Old Qt server: no oldValue, both labels named in the header.
		{"qtqa-001-comment-added.json", "qt/qtdeclarative~236085,1 ", &trig{Type: "comment-added", Project: "qt/qtdeclarative", Branch: "dev", Patchset: 1, Account: "qt_sanity_bot",
			Comment: "Patch Set 1: Code-Review-2 Sanity-Review+1\n\nApparently pushing a Work In Progress", Approvals: []vote{v("Sanity-Review", 1, nil), v("Code-Review", -2, nil)}}},
		// Verified granted, Code-Review 0 repeated without oldValue.
		{"wikibugs2-007-comment-added.json", "test/gerrit-ping~429546,3 NEW", &trig{Type: "comment-added", Project: "test/gerrit-ping", Branch: "master", Patchset: 3, Account: "jenkins-bot",
			Approvals: []vote{v("Verified", 2, ip(0)), v("Code-Review", 0, ip(0))}}},
		// Legacy category ids, no header: repeats.
		{"pygerrit-003-comment-added.json", "project-name~123456,4 ", &trig{Type: "comment-added", Project: "project-name", Branch: "branch-name", Patchset: 4,
			Comment: "Review comment", Approvals: []vote{v("Code-Review", 1, ip(1)), v("Verified", 1, ip(1))}}},
		// Mislabelled: a comment-added body typed patchset-created; the uploader comes from the patchset.
		{"gerrit-trigger-002-patchset-created.json", "testProject~392335,2 NEW", &trig{Type: "patchset-created", Project: "testProject", Branch: "develop", Patchset: 2, Account: "eszyabc",
			Approvals: []vote{v("Verified", -1, nil)}}},
		{"go-gerrit-001-change-merged.json", "test~1,1 MERGED", &trig{Type: "change-merged", Project: "test", Branch: "master", Patchset: 1, Account: "fbar", NewRev: zeros}},
		{"gerrit-events-001-change-deleted.json", "bwnUVH~3,0 ABANDONED", &trig{Type: "change-deleted", Project: "bwnUVH", Branch: "main", Account: "admin"}},
		{"qtqa-003-ref-updated.json", "", &trig{Type: "ref-updated", Project: "qtqa/tqtc-coin-ci", Branch: "master", Ref: "refs/heads/master",
			OldRev: "8cde4a825638a414ef55a57662b38e2746b83668", NewRev: "a80ed61a98fd0a1d13eab95252db189cdeb0fe96", Account: "qt_ci_bot"}},
		{"cdevents-005-ref-updated.json", "", &trig{Type: "ref-updated", Project: "TestRepo", Branch: "test_branch", Ref: "refs/heads/test_branch",
			OldRev: "0c8c548ca93b44dd501c000ebb79ecc8f9aa4bd6", NewRev: zeros, Account: "admin"}},
		{"cdevents-002-project-head-updated.json", "", &trig{Type: "project-head-updated", Project: "TestRepo3", Branch: "main"}},
	} {
		ev, _ := ParseEvent(readFixture(t, dir, tc.file))
		got, ok := Normalize(ev)
		if !ok {
			t.Errorf("%s: not normalised", tc.file)
			continue
		}
		change := ""
		if got.Change != nil {
			change = got.Change.String() + " " + string(got.Change.Status)
			got.Change = nil
		}
		if change != tc.change {
			t.Errorf("%s: change %q, want %q", tc.file, change, tc.change)
		}
		if !strings.HasPrefix(got.Comment, tc.want.Comment) {
			t.Errorf("%s: comment %q", tc.file, got.Comment)
		}
		got.Comment = tc.want.Comment
		if !reflect.DeepEqual(got, tc.want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			t.Errorf("%s:\n got %s\nwant %s", tc.file, g, w)
		}
	}
}
