package pipeline

import (
	"strings"
	"testing"
)

// Dependency scenarios: git parents, Depends-On, shared and unshared queues.

func messageOf(h *harness, name string, outcome Outcome) string {
	for _, a := range h.reports {
		if a.Change.Key() == h.key(name) && a.Report.Outcome == outcome {
			return a.Report.Message
		}
	}
	return ""
}

func TestGateNeededChangeNotApprovedIsRefusedThenEnqueuedBehind(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.dependsOn("B", "A", true)
	h.approve("B")
	eq(t, "queue after B alone", h.queueItems("gate"), nil)
	msg := messageOf(h, "B", OutcomeDequeued)
	if !strings.Contains(msg, "depends on change org/a~1001") || !strings.Contains(msg, "lacks Code-Review +2") {
		t.Fatalf("refusal should name the needed change and why: %q", msg)
	}
	for _, a := range h.reports {
		if len(a.Report.Labels) > 0 {
			t.Fatalf("a refusal must not vote: %+v", a.Report)
		}
	}
	h.approve("A")
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:A", "integrated@master:B"})
	eq(t, "running", h.running(), []string{"gate A: A", "gate B: A+B"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"A", "B"})
}

func TestGateNeededChangesEnqueueAheadInDependencyOrder(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/b")
	h.change("C", "org/a")
	h.dependsOn("C", "B", false)
	h.dependsOn("B", "A", false)
	for _, n := range []string{"A", "B"} {
		c := h.get(n)
		c.Approvals = append(c.Approvals, Approval{Label: "Code-Review", Value: 2, By: "bob"})
	}
	h.approve("C")
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:A", "integrated@master:B", "integrated@master:C"})
	eq(t, "running", h.running(), []string{"gate A: A", "gate B: A+B", "gate C: A+B+C"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"A", "B", "C"})
}

func TestGateChangesWaitingBehindEnqueueInNumberOrder(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	for _, n := range []string{"D", "B", "C"} {
		h.change(n, "org/b")
		h.dependsOn(n, "A", false)
		h.approve(n) // refused: A is not approved
	}
	h.approve("A")
	// D was created first (lowest number), then B, then C.
	eq(t, "queue", h.queueItems("gate"), []string{
		"integrated@master:A", "integrated@master:D", "integrated@master:B", "integrated@master:C"})
	eq(t, "running", h.running(), []string{"gate A: A", "gate D: A+D", "gate B: A+D+B", "gate C: A+D+B+C"})
}

func TestGateDependentDequeuedWhenItsDependencyFails(t *testing.T) {
	h := gateABC(t)
	h.dependsOn("B", "A", true)
	h.approve("A")
	h.approve("B")
	h.approve("C")
	h.release("gate", "A", PhaseFailed)
	eq(t, "cancels", h.cancels, []string{"gate B: A+B", "gate C: A+B+C"})
	eq(t, "running", h.running(), []string{"gate C: C"})
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:C"})
	eq(t, "reports", h.reportLines("gate")[3:], []string{"gate A failure Verified-2", "gate B failure Verified-2"})
	if msg := messageOf(h, "B", OutcomeFailure); !strings.Contains(msg, "org/a~1001") || !strings.Contains(msg, "it failed") {
		t.Errorf("B's report should say its dependency failed: %q", msg)
	}
}

func TestGateDependentOfFailingChangeInMiddleWaitsThenLeaves(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"A", "B", "C", "D"} {
		h.change(n, "org/a")
	}
	h.dependsOn("C", "B", true)
	for _, n := range []string{"A", "B", "C", "D"} {
		h.approve(n)
	}
	h.release("gate", "B", PhaseFailed)
	// C needs the failing B: its build stops and it is not re-tested.
	// D is tested on A alone.
	eq(t, "cancels", h.cancels, []string{"gate C: A+B+C", "gate D: A+B+C+D"})
	eq(t, "running", h.running(), []string{"gate A: A", "gate D: A+D"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"A", "D"})
	eq(t, "reports", h.reportLines("gate")[4:], []string{
		"gate A success Verified+2 submit", "gate B failure Verified-2", "gate C failure Verified-2",
		"gate D success Verified+2 submit"})
}

func TestGateCrossRepoTriangle(t *testing.T) {
	// A depends on B and C; B depends on C; A and C in org/a, B in org/b.
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/b")
	h.change("C", "org/a")
	h.dependsOn("A", "B", false)
	h.dependsOn("A", "C", false)
	h.dependsOn("B", "C", false)
	h.approve("A")
	h.approve("B")
	eq(t, "nothing before C", h.queueItems("gate"), nil)
	h.approve("C")
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:C", "integrated@master:B", "integrated@master:A"})
	eq(t, "running", h.running(), []string{"gate C: C", "gate B: C+B", "gate A: C+B+A"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"C", "B", "A"})
}

func TestGateRefusesDependencyInUnsharedQueue(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("X", "org/c")
	h.dependsOn("A", "X", false)
	h.get("X").Approvals = []Approval{{Label: "Code-Review", Value: 2}}
	h.approve("A")
	eq(t, "queue", h.queueItems("gate"), nil)
	msg := messageOf(h, "A", OutcomeDequeued)
	if !strings.Contains(msg, "org/c~1002, which belongs to the org/c@master queue") || !strings.Contains(msg, "must share a queue") {
		t.Fatalf("refusal: %q", msg)
	}
	// Once X is in its own queue, A is still refused, and X is untouched.
	h.approve("X")
	h.reports = nil
	h.approve("A")
	eq(t, "queue", h.queueItems("gate"), []string{"org/c@master:X"})
	if msg := messageOf(h, "A", OutcomeDequeued); !strings.Contains(msg, "which is in the org/c@master queue, not in integrated@master") {
		t.Fatalf("refusal: %q", msg)
	}
}

func TestCycleIsRefusedInGateAndCheck(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/b")
	h.dependsOn("A", "B", false)
	h.dependsOn("B", "A", false)
	h.get("B").Approvals = []Approval{{Label: "Code-Review", Value: 2}}
	h.approve("A")
	h.upload("A")
	eq(t, "gate", h.queueItems("gate"), nil)
	eq(t, "check", h.queueItems("check"), nil)
	want := "dependency cycle: org/a~1001 -> org/b~1002 -> org/a~1001"
	n := 0
	for _, a := range h.reports {
		if strings.Contains(a.Report.Message, want) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("want 2 cycle refusals naming %q, reports: %v", want, h.reports)
	}
}

func TestDependencyMergedOutsideCountsAsSatisfied(t *testing.T) {
	h := gateABC(t)
	h.dependsOn("B", "A", false)
	h.get("A").Status = StatusMerged
	h.approve("B")
	eq(t, "running", h.running(), []string{"gate B: B"})
}

func TestGateChangeMergedOutsideLeavesWithoutResettingBehind(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.approve("C")
	h.mergeOutside("B")
	eq(t, "cancels", h.cancels, []string{"gate B: A+B"})
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:A", "integrated@master:C"})
	h.releaseAll()
	eq(t, "merged by us", h.merged, []string{"A", "C"})
	eq(t, "builds", h.allBuilds(), []string{"gate A: A", "gate B: A+B", "gate C: A+B+C"})
}

func TestCheckTestsNeededChangesAsNonLiveItems(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.dependsOn("B", "A", true)
	h.upload("B")
	eq(t, "queue", h.queueItems("check"), []string{"check-q1:A", "check-q1:B"})
	eq(t, "running", h.running(), []string{"check B: A+B"})
	h.releaseAll()
	eq(t, "reports", h.reportLines("check"), []string{"check B start", "check B success Verified+1"})
	eq(t, "queue after", h.queueItems("check"), nil)
}

func TestCheckDependencyAbandonedDequeuesDependent(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.dependsOn("B", "A", true)
	h.upload("A")
	h.upload("B")
	h.abandon("A")
	eq(t, "cancels", h.cancels, []string{"check A: A", "check B: A+B"})
	eq(t, "queue", h.queueItems("check"), nil)
	eq(t, "reports", h.reportLines("check"), []string{"check A start", "check B start", "check B failure Verified-1"})
	if msg := messageOf(h, "B", OutcomeFailure); !strings.Contains(msg, "change abandoned") {
		t.Errorf("B's report should say A was abandoned: %q", msg)
	}
}

func TestCheckRefusesOutdatedParentPatchset(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.dependsOn("B", "A", true) // B's parent is A,1
	h.get("A").Patchset = 2
	h.upload("B")
	eq(t, "queue", h.queueItems("check"), nil)
	if msg := messageOf(h, "B", OutcomeDequeued); !strings.Contains(msg, "patchset 1 of change org/a~1001, which is outdated") {
		t.Fatalf("refusal: %q", msg)
	}
}
