//go:build linux

package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/internal/testlog"
)

// TestChaosInvariantsCatchViolations: checkInvariants, given what a
// broken daemon would leave behind (a failing change merged, a change
// merged on a build of another tree, a passing change left open, a build
// not seen Succeeded, a change whose commit landed twice, a data race in
// the log), names each of them and nothing about the change that was
// gated correctly. A passing change reported failed is a problem when
// every passing change must merge, else a note. No daemon runs: the
// test plays its part through gerrittest's REST API and writes the
// workflows' records itself.
func TestChaosInvariantsCatchViolations(t *testing.T) {
	g, err := gerrittest.New(gerrittest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	var seq atomic.Int64
	w := &chaosWorld{t: t, gerrit: g, argoLog: &testlog.Buffer{}, dir: t.TempDir(),
		uniqueName: func(p string) string { return fmt.Sprintf("%s-%d", p, seq.Add(1)) },
		phases:     &phaseLog{phases: map[string]map[wfv1.WorkflowPhase]bool{}}}
	s := w.newChaosScenario(t, 1, 1)
	s.addChanges(t, 7, []int{1})
	p := s.projects[0]

	// Every change approved and verified as the daemon would; the
	// "daemon" submits 0 (with a good build), 1 (which fails its tests),
	// 2 (with a build of another tree), 4 (whose build never succeeded)
	// and 5 (with a good build, but its commit lands a second time),
	// submits 0 again, leaves 3 open and reports 6 failed.
	for i, c := range s.changes {
		s.approve(t, i)
		verified := 2
		if i == 6 {
			verified = -2
		}
		if err := g.Approve(c.project, c.number, "Verified", verified, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{0, 1, 2, 4, 5, 0} {
		restSubmit(t, g, s.changes[i])
	}
	record := func(uid string, i int, tree string, succeeded bool) {
		t.Helper()
		c := s.changes[i]
		ch, err := g.Change(c.project, c.number)
		if err != nil {
			t.Fatal(err)
		}
		if tree == "" {
			tree = s.mustGit(t, p, "rev-parse", ch.MergedAs+"^{tree}")
		}
		dir := filepath.Join(s.records, uid)
		chaosWrite(t, filepath.Join(dir, "name"), "wf-"+uid+"\n")
		chaosWrite(t, filepath.Join(dir, "verdict"), "pass\n")
		chaosWrite(t, filepath.Join(dir, "trees"), fmt.Sprintf("%s %s %s\n", p, ch.MergedAs, tree))
		chaosWrite(t, filepath.Join(dir, "changes.json"), fmt.Sprintf(
			`[{"project":%q,"branch":"master","change":%d,"patchset":1,"ref":%q,"revision":%q,"gitUrl":"","seakeeperRef":""}]`,
			p, c.number, ch.Patchsets[0].Ref, ch.Patchsets[0].Revision))
		if succeeded {
			w.phases.phases[uid] = map[wfv1.WorkflowPhase]bool{wfv1.WorkflowSucceeded: true}
		}
	}
	record("uid-0", 0, "", true)
	record("uid-2", 2, strings.Repeat("0", 40), true)
	record("uid-4", 4, "", false)
	record("uid-5", 5, "", true)
	ch5, err := g.Change(p, s.changes[5].number)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.PushToBranch(p, "master", map[string]string{"again.txt": "again\n"},
		"Chaos change 5 again\n\nChange-Id: "+ch5.ChangeID+"\n", ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.d.logPath, []byte("WARNING: DATA RACE\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	probs, notes := s.checkInvariants(t, true)
	name := func(i int) string { return s.changes[i].String() }
	want := []string{
		name(1) + " fails its tests but was merged",
		name(1) + " merged without a passing build",
		name(2) + " merged without a passing build",
		name(3) + " passes its tests but was not merged: it is open",
		name(4) + " merged without a passing build",
		name(5) + " (merged): 2 commits with its Change-Id in the branch history, want 1",
		name(6) + " passes its tests but was not merged: it is failed",
		`the daemon log contains "WARNING: DATA RACE"`,
	}
	for _, w := range want {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("no problem starting %q", w)
		}
	}
	for _, pr := range probs {
		if strings.HasPrefix(pr, name(0)) {
			t.Errorf("a problem about the change gated correctly: %s", pr)
		}
	}
	if !slices.ContainsFunc(probs, func(p string) bool {
		return strings.HasPrefix(p, name(2)) && strings.Contains(p, "tested tree 0000000000000000000000000000000000000000")
	}) {
		t.Errorf("the tree mismatch of %s is not explained", name(2))
	}
	if !slices.ContainsFunc(probs, func(p string) bool {
		return strings.HasPrefix(p, name(4)) && strings.Contains(p, "never seen Succeeded")
	}) {
		t.Errorf("the build of %s that did not succeed is not explained", name(4))
	}
	if len(notes) != 0 {
		t.Errorf("notes when every passing change must merge: %q", notes)
	}

	// Without mustMerge, the change reported failed is a note, the rest
	// stays a problem.
	lax, notes := s.checkInvariants(t, false)
	if want := []string{name(6) + " passes its tests but was reported failed"}; !slices.Equal(notes, want) {
		t.Errorf("notes %q, want %q", notes, want)
	}
	if slices.ContainsFunc(lax, func(p string) bool { return strings.HasPrefix(p, name(6)) }) ||
		len(lax) != len(probs)-1 {
		t.Errorf("without mustMerge, want the same problems less the one about %s; got:\n%s", name(6), strings.Join(lax, "\n"))
	}
	if t.Failed() {
		t.Logf("problems:\n%s", strings.Join(probs, "\n"))
	}
}

// restSubmit submits a change over REST as the daemon's user, so that
// gerrittest's request log holds the attempt.
func restSubmit(t *testing.T, g *gerrittest.Server, c chaosChange) {
	t.Helper()
	u := fmt.Sprintf("%s/a/changes/%s~%d/submit", g.URL(), url.PathEscape(c.project), c.number)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(g.User(), g.Password())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func (s *chaosScenario) mustGit(t *testing.T, project string, args ...string) string {
	t.Helper()
	out, err := s.git(project, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
