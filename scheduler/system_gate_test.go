package scheduler_test

// The gate scenarios of the system tests (see system_test.go).

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
)

// TestSystemGateSharedQueueMergesAroundAFailingChange: five changes of two
// projects in one shared queue are approved at once and the third fails
// its tests. The other four merge in queue order, the third gets Verified
// -2 and stays open, and every workflow tested the branch tips plus the
// changes ahead of it that were expected to merge, plus its own: first
// with the third ahead, then, for the two behind it, without.
func TestSystemGateSharedQueueMergesAroundAFailingChange(t *testing.T) {
	e := startSystem(t, sysOptions{Projects: []string{"a", "b"}, Pipelines: []string{"gate"}})
	chs := []*gerrittest.Change{
		e.newChange(0, "gate 1", nil),
		e.newChange(1, "gate 2", nil),
		e.newChange(0, "gate 3", map[string]string{"broken": "3\n"}),
		e.newChange(1, "gate 4", nil),
		e.newChange(0, "gate 5", nil),
	}
	for _, ch := range chs {
		e.approve(ch)
	}
	third := chs[2]
	e.await(sysWait, "changes 1, 2, 4 and 5 to merge and change 3 to fail", func() bool {
		v, _ := e.vote(third, "Verified")
		return e.merged(chs[0]) && e.merged(chs[1]) && e.merged(chs[3]) && e.merged(chs[4]) && v == -2
	})

	// Gerrit: the four merged in queue order, the third is open, rejected.
	want := []int{chs[0].Number, chs[1].Number, chs[3].Number, chs[4].Number}
	if got := e.mergeOrder(); !slices.Equal(got, want) {
		t.Errorf("changes merged in the order %v, want %v", got, want)
	}
	if got, want := e.history(e.projects[0]), sysBase("gate 1", "gate 5"); !slices.Equal(got, want) {
		t.Errorf("%s's master got %q, want %q", e.projects[0], got, want)
	}
	if got, want := e.history(e.projects[1]), sysBase("gate 2", "gate 4"); !slices.Equal(got, want) {
		t.Errorf("%s's master got %q, want %q", e.projects[1], got, want)
	}
	if got := e.change(third); got.Status != "NEW" {
		t.Errorf("change 3 is %s, want NEW", got.Status)
	}
	if r := e.reports(third); len(r) != 1 || !strings.Contains(r[0].Text, "Build failed (gate pipeline).") ||
		!strings.Contains(r[0].Text, "\n- unit-tests failed ") {
		t.Errorf("change 3: want one failure report naming unit-tests, got %+v", r)
	}
	for i, ch := range chs {
		if i == 2 {
			continue
		}
		if v, ok := e.vote(ch, "Verified"); !ok || v != 2 {
			t.Errorf("change %d: the daemon's Verified vote is %d (cast: %v), want +2", i+1, v, ok)
		}
		for _, m := range e.reports(ch) {
			if !strings.Contains(m.Text, "Build succeeded (gate pipeline).") {
				t.Errorf("change %d got a report other than success: %+v", i+1, m)
			}
		}
	}

	// The workflows: what each one fetched. Changes 1 to 3 were tested
	// once, with everything ahead; 4 and 5 first with change 3 ahead
	// (those runs may have been cancelled before they fetched anything),
	// then, after the reset, without it.
	with3 := func(k int) []*gerrittest.Change { return chs[:k] }
	without3 := func(k int) []*gerrittest.Change { return slices.Delete(slices.Clone(chs[:k]), 2, 3) }
	phases := e.phases("")
	for i, ch := range chs {
		k := i + 1
		candidates := [][]*gerrittest.Change{with3(k)}
		if k > 3 {
			candidates = append(candidates, without3(k))
		}
		runs := e.runsOf("gate", ch.Number)
		retested := false
		for _, r := range runs {
			matched := -1
			var why []string
			for j, c := range candidates {
				if msg := e.treeMismatch(r, c, nil); msg != "" {
					why = append(why, msg)
				} else {
					matched = j
				}
			}
			if matched < 0 {
				t.Errorf("change %d: workflow %s tested a tree that no queue state explains: %s", k, r.Workflow, strings.Join(why, "; "))
			}
			if matched == 1 && phases[r.Workflow] == wfv1.WorkflowSucceeded {
				retested = true
			}
		}
		switch {
		case k <= 3 && len(runs) != 1:
			t.Errorf("change %d: want one run, got %d: %+v", k, len(runs), runs)
		case k == 3 && phases[runs[0].Workflow] != wfv1.WorkflowFailed:
			t.Errorf("change 3's workflow %s is %s, want Failed", runs[0].Workflow, phases[runs[0].Workflow])
		case k > 3 && !retested:
			t.Errorf("change %d: no successful re-test without change 3 among %+v (phases %v)", k, runs, phases)
		}
	}
	for name, phase := range phases {
		if phase == wfv1.WorkflowSucceeded && !slices.ContainsFunc(e.runs(), func(r sysRun) bool { return r.Workflow == name }) {
			t.Errorf("workflow %s succeeded without recording what it tested", name)
		}
	}
}

// TestSystemGateDependsOnWaitsForTheChangeItNeeds: B (second project)
// depends on A (first project, same queue) through a Depends-On footer
// with A's URL. Approved before A, B is refused with a report naming A
// and runs nothing; once A is approved, both are enqueued, A ahead of B,
// and merge in that order, B tested with A.
func TestSystemGateDependsOnWaitsForTheChangeItNeeds(t *testing.T) {
	e := startSystem(t, sysOptions{Projects: []string{"a", "b"}, Pipelines: []string{"gate"}})
	a := e.newChange(0, "needed change", nil)
	b := e.newChange(1, "depending change", nil, e.gerrit.ChangeURL(a.Project, a.Number))
	e.approve(b)
	e.await(sysWait, "a report on B", func() bool { return len(e.reports(b)) > 0 })

	refusal := fmt.Sprintf("Seakeeper cannot enqueue this change in the gate pipeline because it depends on change %s~%d, which cannot enter the gate pipeline because it lacks",
		a.Project, a.Number)
	if r := e.reports(b); len(r) != 1 || !strings.Contains(r[0].Text, refusal) {
		t.Errorf("B: want one report %q..., got %+v", refusal, r)
	}
	if v, ok := e.vote(b, "Verified"); ok {
		t.Errorf("B was voted Verified %d while refused", v)
	}
	if wfs := e.workflows(""); len(wfs) != 0 {
		t.Errorf("workflows ran for a refused change: %+v", wfs)
	}
	if e.merged(b) {
		t.Fatal("B merged before A")
	}

	e.approve(a)
	e.await(sysWait, "A and B to merge", func() bool { return e.merged(a) && e.merged(b) })
	if got, want := e.mergeOrder(), []int{a.Number, b.Number}; !slices.Equal(got, want) {
		t.Errorf("changes merged in the order %v, want A then B %v", got, want)
	}
	if got, want := e.history(a.Project), sysBase("needed change"); !slices.Equal(got, want) {
		t.Errorf("%s's master got %q, want %q", a.Project, got, want)
	}
	if got, want := e.history(b.Project), sysBase("depending change"); !slices.Equal(got, want) {
		t.Errorf("%s's master got %q, want %q", b.Project, got, want)
	}
	for _, c := range []struct {
		ch   *gerrittest.Change
		want []*gerrittest.Change
	}{{a, []*gerrittest.Change{a}}, {b, []*gerrittest.Change{a, b}}} {
		runs := e.runsOf("gate", c.ch.Number)
		if len(runs) != 1 {
			t.Errorf("change %d: want one run, got %+v", c.ch.Number, runs)
			continue
		}
		if msg := e.treeMismatch(runs[0], c.want, nil); msg != "" {
			t.Errorf("change %d: %s", c.ch.Number, msg)
		}
	}
}

// TestSystemGateNewPatchsetDequeuesTheItem: a new patchset of a change
// under test in the gate takes it out: its workflow is terminated and
// nothing is reported on the old patchset; only the new one, once
// approved, merges.
func TestSystemGateNewPatchsetDequeuesTheItem(t *testing.T) {
	e := startSystem(t, sysOptions{Projects: []string{"app"}, Pipelines: []string{"gate"}, Hold: true})
	ch := e.newChange(0, "gate x", map[string]string{"x.txt": "one\n"})
	e.approve(ch)
	old := changeSelector("gate", ch.Number, 1)
	e.await(sysWait, "the workflow of patchset 1 to start", func() bool {
		wfs := e.workflows(old)
		return len(wfs) == 1 && e.started(wfs[0].Name)
	})
	name := e.workflows(old)[0].Name

	ch2, err := e.gerrit.NewPatchset(ch.Project, ch.Number, gerrittest.PatchsetSpec{Files: map[string]string{"x.txt": "two\n"}})
	if err != nil {
		t.Fatal(err)
	}
	e.await(sysWait, "the workflow of patchset 1 to stop", func() bool {
		wfs := e.workflows(old)
		return len(wfs) == 0 || wfs[0].Status.Phase.Completed()
	})
	if wfs := e.workflows(old); len(wfs) == 1 {
		wf := wfs[0]
		if wf.Name != name || wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate || wf.Status.Phase != wfv1.WorkflowFailed {
			t.Errorf("workflow %s: want %s terminated (shutdown Terminate, phase Failed), got shutdown %q, phase %s: %s",
				wf.Name, name, wf.Spec.Shutdown, wf.Status.Phase, wf.Status.Message)
		}
	}
	if got := e.change(ch); got.Status != "NEW" {
		t.Fatalf("the change is %s after its new patchset, want NEW", got.Status)
	}

	// The new patchset, approved, is what merges.
	e.release(fmt.Sprintf("%d-2", ch.Number))
	e.approve(ch2)
	e.await(sysWait, "the change to merge", func() bool { return e.merged(ch) })
	tip, err := e.gerrit.Branch(ch.Project, "master")
	if err != nil {
		t.Fatal(err)
	}
	if rev := ch2.Current().Revision; tip != rev {
		t.Errorf("master is at %s, want patchset 2 %s", tip, rev)
	}
	if got, want := e.history(ch.Project), sysBase("gate x"); !slices.Equal(got, want) {
		t.Errorf("master got %q, want %q", got, want)
	}
	if data, err := e.gerrit.ReadFile(ch.Project, tip, "x.txt"); err != nil || string(data) != "two\n" {
		t.Errorf("x.txt on master is %q (%v), want patchset 2's", data, err)
	}
	if r := reportsOn(e.reports(ch), 1); len(r) != 0 {
		t.Errorf("reports on the dequeued patchset 1: %+v", r)
	}
	if r := reportsOn(e.reports(ch), 2); len(r) != 1 || !strings.Contains(r[0].Text, "Build succeeded (gate pipeline).") {
		t.Errorf("want one success report on patchset 2, got %+v", r)
	}
	runs := e.runsOf("gate", ch.Number)
	if len(runs) != 1 || runs[0].Patchset != 2 || runs[0].Heads[ch.Project] != ch2.Current().Revision {
		t.Errorf("want one recorded run, of patchset 2 at %s; got %+v", ch2.Current().Revision, runs)
	}
}

// TestSystemGateRefusedSubmitReportsAndResetsTheQueue: while the head of
// the gate is under test, a change touching the same file is merged
// outside Seakeeper. The head passes, Gerrit refuses its submit (409, path
// conflict): the head gets a merge-failure report quoting Gerrit and stays
// open, and the two changes behind it are tested again without it, on the
// new branch tip, and merge.
func TestSystemGateRefusedSubmitReportsAndResetsTheQueue(t *testing.T) {
	e := startSystem(t, sysOptions{Projects: []string{"a", "b"}, Pipelines: []string{"gate"}, Hold: true})
	head := e.newChange(0, "gate head", map[string]string{"shared.txt": "head\n"})
	outside := e.newChange(0, "outside", map[string]string{"shared.txt": "outside\n"})
	behind1 := e.newChange(0, "gate behind 1", nil)
	behind2 := e.newChange(1, "gate behind 2", nil)
	e.release(fmt.Sprintf("%d-1", behind1.Number))
	e.release(fmt.Sprintf("%d-1", behind2.Number))
	for _, ch := range []*gerrittest.Change{head, behind1, behind2} {
		e.approve(ch)
	}

	// The two behind pass on top of the head, which is still under test.
	e.await(sysWait, "the changes behind to pass on top of the head", func() bool {
		return len(e.runsOf("gate", behind1.Number)) == 1 && len(e.runsOf("gate", behind2.Number)) == 1 &&
			len(e.workflows(changeSelector("gate", head.Number, 1))) == 1
	})
	if _, err := e.gerrit.MergeOutside(outside.Project, outside.Number, "admin"); err != nil {
		t.Fatal(err)
	}
	e.release(fmt.Sprintf("%d-1", head.Number))
	e.await(sysWait, "the changes behind to merge", func() bool { return e.merged(behind1) && e.merged(behind2) })

	// The head: a merge failure quoting Gerrit, Verified -2, still open.
	if got := e.change(head); got.Status != "NEW" {
		t.Errorf("the head is %s, want NEW", got.Status)
	}
	if v, ok := e.vote(head, "Verified"); !ok || v != -2 {
		t.Errorf("the head's Verified vote is %d (cast: %v), want -2", v, ok)
	}
	quote := fmt.Sprintf("Merge failed; please rebase the change.\n\nSeakeeper could not submit this change.\n\n"+
		"Gerrit said: Failed to submit 1 change due to the following problems:\nChange %d: Change could not be merged due to a path conflict.",
		head.Number)
	if r := e.reports(head); len(r) == 0 || !strings.Contains(r[len(r)-1].Text, quote) {
		t.Errorf("the head's last report should quote Gerrit's refusal %q; reports: %+v", quote, r)
	}

	// Gerrit's branches: the outside change, then the two behind.
	if got, want := e.mergeOrder(), []int{outside.Number, behind1.Number, behind2.Number}; !slices.Equal(got, want) {
		t.Errorf("changes merged in the order %v, want %v", got, want)
	}
	if got, want := e.history(e.projects[0]), sysBase("outside", "gate behind 1"); !slices.Equal(got, want) {
		t.Errorf("%s's master got %q, want %q", e.projects[0], got, want)
	}
	if got, want := e.history(e.projects[1]), sysBase("gate behind 2"); !slices.Equal(got, want) {
		t.Errorf("%s's master got %q, want %q", e.projects[1], got, want)
	}

	// The workflows: the head tested once on the old tip; the two behind
	// first with the head, then without it on the new tip of the first
	// project.
	if runs := e.runsOf("gate", head.Number); len(runs) != 1 {
		t.Errorf("the head: want one run, got %+v", runs)
	} else if msg := e.treeMismatch(runs[0], []*gerrittest.Change{head}, nil); msg != "" {
		t.Errorf("the head: %s", msg)
	}
	newTip := map[string][]string{e.projects[0]: {"outside"}}
	phases := e.phases("")
	for i, c := range []struct {
		ch     *gerrittest.Change
		before []*gerrittest.Change
		after  []*gerrittest.Change
	}{
		{behind1, []*gerrittest.Change{head, behind1}, []*gerrittest.Change{behind1}},
		{behind2, []*gerrittest.Change{head, behind1, behind2}, []*gerrittest.Change{behind1, behind2}},
	} {
		runs := e.runsOf("gate", c.ch.Number)
		if len(runs) != 2 {
			t.Errorf("change behind %d: want two runs, got %+v", i+1, runs)
			continue
		}
		for _, r := range runs {
			before, after := e.treeMismatch(r, c.before, nil), e.treeMismatch(r, c.after, newTip)
			if before != "" && after != "" {
				t.Errorf("change behind %d: workflow %s tested neither the state with the head (%s) nor the one after it (%s)",
					i+1, r.Workflow, before, after)
			}
			if after == "" && phases[r.Workflow] != wfv1.WorkflowSucceeded {
				t.Errorf("change behind %d: the re-test %s is %s, want Succeeded", i+1, r.Workflow, phases[r.Workflow])
			}
		}
		if e.treeMismatch(runs[0], c.before, nil) != "" || e.treeMismatch(runs[1], c.after, newTip) != "" {
			t.Errorf("change behind %d: want a run with the head, then one without it; got %+v", i+1, runs)
		}
	}
}
