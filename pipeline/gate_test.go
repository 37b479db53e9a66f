package pipeline

import (
	"strings"
	"testing"
)

// Scenarios of the dependent (gate) manager, after Zuul's test_scheduler.

func gateABC(t *testing.T) *harness {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.change("C", "org/b")
	return h
}

func TestGateParallelChangesTestedOnTopOfEachOther(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.approve("C")
	eq(t, "running builds", h.running(), []string{
		"gate A: A", "gate B: A+B", "gate C: A+B+C",
	})
	h.releaseAll()
	eq(t, "merge order", h.merged, []string{"A", "B", "C"})
	eq(t, "reports", h.reportLines("gate"), []string{
		"gate A start Verified+0", "gate B start Verified+0", "gate C start Verified+0",
		"gate A success Verified+2 submit", "gate B success Verified+2 submit", "gate C success Verified+2 submit",
	})
	eq(t, "cancels", h.cancels, nil)
	eq(t, "queue after", h.queueItems("gate"), nil)
	if w := h.window("gate", "integrated@master"); w != 23 {
		t.Errorf("window after three merges = %d, want 20+3 (the drained queue keeps it)", w)
	}
}

func TestGateFailedChangeAtHeadResetsOnlyItemsBehind(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.approve("C")
	h.release("gate", "A", PhaseFailed)
	eq(t, "cancels", h.cancels, []string{"gate B: A+B", "gate C: A+B+C"})
	eq(t, "running after reset", h.running(), []string{"gate B: B", "gate C: B+C"})
	h.releaseAll()
	eq(t, "merge order", h.merged, []string{"B", "C"})
	eq(t, "reports", h.reportLines("gate")[3:], []string{
		"gate A failure Verified-2",
		"gate B success Verified+2 submit", "gate C success Verified+2 submit",
	})
}

func TestGateFailedChangeInMiddleIsReportedWhenItReachesHead(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.approve("C")
	h.release("gate", "B", PhaseFailed)
	// C is now tested without B; A keeps running; B waits for A.
	eq(t, "cancels", h.cancels, []string{"gate C: A+B+C"})
	eq(t, "running", h.running(), []string{"gate A: A", "gate C: A+C"})
	if got := len(h.reportLines("gate")); got != 3 {
		t.Fatalf("B must not be reported before it reaches the head; reports %v", h.reportLines("gate"))
	}
	h.release("gate", "C", PhaseSucceeded)
	if len(h.merged) != 0 {
		t.Fatalf("C merged before A: %v", h.merged)
	}
	h.release("gate", "A", PhaseSucceeded)
	eq(t, "merge order", h.merged, []string{"A", "C"})
	eq(t, "reports", h.reportLines("gate")[3:], []string{
		"gate A success Verified+2 submit",
		"gate B failure Verified-2",
		"gate C success Verified+2 submit",
	})
	eq(t, "all builds", h.allBuilds(), []string{"gate A: A", "gate B: A+B", "gate C: A+B+C", "gate C: A+C"})
}

func TestGateTwoFailedAtHead(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"A", "B", "C", "D"} {
		h.change(n, "org/a")
		h.approve(n)
	}
	h.release("gate", "A", PhaseFailed)
	h.release("gate", "B", PhaseFailed)
	eq(t, "builds", h.allBuilds(), []string{
		"gate A: A", "gate B: A+B", "gate C: A+B+C", "gate D: A+B+C+D",
		"gate B: B", "gate C: B+C", "gate D: B+C+D",
		"gate C: C", "gate D: C+D",
	})
	eq(t, "cancels", h.cancels, []string{
		"gate B: A+B", "gate C: A+B+C", "gate D: A+B+C+D",
		"gate C: B+C", "gate D: B+C+D",
	})
	h.releaseAll()
	eq(t, "merge order", h.merged, []string{"C", "D"})
	eq(t, "final reports", h.reportLines("gate")[4:], []string{
		"gate A failure Verified-2", "gate B failure Verified-2",
		"gate C success Verified+2 submit", "gate D success Verified+2 submit",
	})
}

func TestGateHeadIsDequeuedAndReportedOnce(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.release("gate", "A", PhaseFailed)
	// Later news about A (a comment, a repeated result) must not report it again.
	h.vote("A", "Code-Review", 1)
	h.apply(Event{Build: &BuildResult{BuildSet: "gate-1.1", Phase: PhaseFailed}})
	failures := 0
	for _, l := range h.reportLines("gate") {
		if strings.HasPrefix(l, "gate A failure") {
			failures++
		}
	}
	if failures != 1 {
		t.Fatalf("A reported %d times: %v", failures, h.reportLines("gate"))
	}
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:B"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"B"})
}

func TestGateNewPatchsetDequeuesAndResetsBehind(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.approve("C")
	h.newPatchset("B")
	eq(t, "cancels", h.cancels, []string{"gate B1: A+B1", "gate C: A+B1+C"})
	// The new patchset enters check (patchset-created), not the gate.
	eq(t, "running", h.running(), []string{"gate A: A", "gate C: A+C", "check B2: B2"})
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:A", "integrated@master:C"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"A", "C"})
	for _, l := range h.reportLines("gate") {
		if strings.HasPrefix(l, "gate B") && !strings.Contains(l, "start") {
			t.Errorf("a silently dequeued old patchset was reported: %s", l)
		}
	}
}

func TestGateNewPatchsetKeptWhenDequeueOnNewPatchsetIsOff(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Pipelines[1].DequeueOnNewPatchset = boolp(false)
		c.Pipelines[1].Require.CurrentPatchset = nil
	})
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.approve("A")
	h.approve("B")
	h.newPatchset("A")
	eq(t, "cancels", h.cancels, nil)
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"A", "B"})
	if h.reports[len(h.reports)-2].Change.Patchset != 1 {
		t.Errorf("the tested patchset 1 must be the one submitted, got %+v", h.reports[len(h.reports)-2].Change)
	}
}

func TestGateAbandonDequeuesSilently(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.approve("C")
	h.abandon("A")
	eq(t, "cancels", h.cancels, []string{"gate A: A", "gate B: A+B", "gate C: A+B+C"})
	eq(t, "running", h.running(), []string{"gate B: B", "gate C: B+C"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"B", "C"})
	eq(t, "reports", h.reportLines("gate")[3:], []string{"gate B success Verified+2 submit", "gate C success Verified+2 submit"})
}

func TestGateMergeConflictReportedAtHeadWithoutBuild(t *testing.T) {
	h := gateABC(t)
	h.conflicts[h.byName["B"]] = true
	h.approve("A")
	h.approve("B")
	h.approve("C")
	// B's merge conflicts, so B gets no build and C is tested without B.
	eq(t, "running", h.running(), []string{"gate A: A", "gate C: A+C"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"A", "C"})
	eq(t, "reports", h.reportLines("gate")[3:], []string{
		"gate A success Verified+2 submit", "gate B merge-conflict Verified-2", "gate C success Verified+2 submit",
	})
	for _, a := range h.reports {
		if a.Report.Outcome == OutcomeMergeConflict && !strings.Contains(a.Report.Message, "README") {
			t.Errorf("conflict report does not name the file: %q", a.Report.Message)
		}
	}
}

func TestGateSubmitRefusedReportsMergeFailureAndResetsBehind(t *testing.T) {
	h := gateABC(t)
	h.refuseSubmit[h.byName["A"]] = "Change 1001: needs Code-Review"
	h.approve("A")
	h.approve("B")
	h.approve("C")
	h.release("gate", "B", PhaseSucceeded)
	h.release("gate", "C", PhaseSucceeded)
	h.release("gate", "A", PhaseSucceeded)
	eq(t, "cancels", h.cancels, nil) // B and C had finished
	eq(t, "rebuilt without A", h.running(), []string{"gate B: B", "gate C: B+C"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"B", "C"})
	eq(t, "reports", h.reportLines("gate")[3:], []string{
		"gate A success Verified+2 submit", "gate A merge-conflict Verified-2",
		"gate B success Verified+2 submit", "gate C success Verified+2 submit",
	})
	for _, a := range h.reports {
		if a.Report.Outcome == OutcomeMergeConflict && !strings.Contains(a.Report.Message, "needs Code-Review") {
			t.Errorf("merge failure does not quote Gerrit: %q", a.Report.Message)
		}
	}
}

func TestGateSubmitAnsweredAlreadyMergedTakesSuccessPath(t *testing.T) {
	h := gateABC(t)
	h.mergedEvents = false
	h.approve("A")
	h.approve("B")
	var submit Action
	h.release("gate", "A", PhaseSucceeded)
	for _, a := range h.reports {
		if a.Report.Submit {
			submit = a
		}
	}
	// Replay of the same result (as after a crash) is ignored; the first
	// answer already dequeued A.
	h.apply(Event{Report: &ReportResult{ActionID: submit.ID, BuildSet: submit.BuildSet, Status: ReportAlreadyMerged}})
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:B"})
	eq(t, "cancels", h.cancels, nil)
}

func TestGateChangeMergedEventOvertakesSubmitAnswer(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Pipelines[1].Window.Initial = 3 })
	h.mergedEvents = false
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.approve("A")
	h.approve("B")
	var submit Action
	h.handleSubmit = func(a Action) { submit = a }
	h.release("gate", "A", PhaseSucceeded)
	// Gerrit's change-merged arrives before the REST answer.
	h.mergeOutside("A")
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:B"})
	if w := h.window("gate", "integrated@master"); w != 4 {
		t.Errorf("window after our own merge = %d, want 4", w)
	}
	h.apply(Event{Report: &ReportResult{ActionID: submit.ID, BuildSet: submit.BuildSet, Status: ReportOK}})
	if w := h.window("gate", "integrated@master"); w != 4 {
		t.Errorf("window grew twice: %d", w)
	}
	eq(t, "cancels", h.cancels, nil)
}
