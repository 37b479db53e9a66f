package pipeline

import (
	"strings"
	"testing"
)

func smallWindow(c *Config) {
	c.Pipelines[1].Window = WindowConfig{Initial: 2, Floor: 1}
}

func TestGateWindowLimitsActiveItemsAndShrinksOnFailure(t *testing.T) {
	h := newHarness(t, smallWindow)
	for _, n := range []string{"A", "B", "C", "D"} {
		h.change(n, "org/a")
		h.approve(n)
	}
	eq(t, "only the window builds", h.running(), []string{"gate A: A", "gate B: A+B"})
	for _, a := range h.actions {
		if a.Kind == ActPrepare && (a.Change.Key() == h.key("C") || a.Change.Key() == h.key("D")) {
			t.Fatalf("item outside the window was prepared: %s", a.ID)
		}
	}
	h.release("gate", "A", PhaseFailed)
	// A leaves with a failure: window 2 -> 1; B is rebuilt alone, C waits.
	if w := h.window("gate", "integrated@master"); w != 1 {
		t.Fatalf("window after failure = %d, want 1", w)
	}
	eq(t, "running", h.running(), []string{"gate B: B"})
	h.release("gate", "B", PhaseSucceeded)
	if w := h.window("gate", "integrated@master"); w != 2 {
		t.Fatalf("window after merge = %d, want 2", w)
	}
	eq(t, "running", h.running(), []string{"gate C: C", "gate D: C+D"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"B", "C", "D"})
	if w := h.window("gate", "integrated@master"); w != 4 {
		t.Fatalf("window after three merges = %d, want 4", w)
	}
}

func TestGateWindowExponentialIncreaseStopsAtCeilingAndFloor(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Pipelines[1].Window = WindowConfig{Initial: 3, Floor: 2, Ceiling: 5, IncreaseType: "exponential", IncreaseFactor: 2}
	})
	h.change("A", "org/a")
	h.approve("A")
	h.releaseAll()
	if w := h.window("gate", "integrated@master"); w != 5 {
		t.Fatalf("3*2 capped at the ceiling: got %d, want 5", w)
	}
	for _, n := range []string{"B", "C"} {
		h.change(n, "org/a")
		h.approve(n)
		h.release("gate", n, PhaseFailed)
	}
	if w := h.window("gate", "integrated@master"); w != 2 {
		t.Fatalf("5/2/2 held at the floor: got %d, want 2", w)
	}
}

func TestGatePromoteMovesChangesToHeadAndResetsWhatMoved(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"A", "B", "C", "D"} {
		h.change(n, "org/a")
		h.approve(n)
	}
	h.admin(AdminEvent{Op: AdminPromote, Pipeline: "gate", Changes: []ChangeKey{h.key("C"), h.key("A")}})
	eq(t, "queue", h.queueItems("gate"), []string{
		"integrated@master:C", "integrated@master:A", "integrated@master:B", "integrated@master:D"})
	eq(t, "cancels", h.cancels, []string{"gate C: A+B+C", "gate A: A", "gate B: A+B", "gate D: A+B+C+D"})
	eq(t, "running", h.running(), []string{"gate C: C", "gate A: C+A", "gate B: C+A+B", "gate D: C+A+B+D"})
	h.releaseAll()
	eq(t, "merged", h.merged, []string{"C", "A", "B", "D"})
}

func TestGatePromoteOfHeadChangesNothing(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.admin(AdminEvent{Op: AdminPromote, Pipeline: "gate", Changes: []ChangeKey{h.key("A")}})
	eq(t, "cancels", h.cancels, nil)
	eq(t, "running", h.running(), []string{"gate A: A", "gate B: A+B"})
}

func TestGatePromoteRefusesToPutAChangeAheadOfItsDependency(t *testing.T) {
	h := gateABC(t)
	h.dependsOn("B", "A", true)
	h.approve("A")
	h.approve("B")
	h.admin(AdminEvent{Op: AdminPromote, Pipeline: "gate", Changes: []ChangeKey{h.key("B")}})
	eq(t, "queue", h.queueItems("gate"), []string{"integrated@master:A", "integrated@master:B"})
	if last := h.notices[len(h.notices)-1]; !strings.Contains(last, "needs change org/a~1001, which would be behind it") {
		t.Fatalf("notice: %q", last)
	}
}

func TestOperatorEnqueueAndDequeue(t *testing.T) {
	h := gateABC(t)
	a := *h.get("A")
	h.admin(AdminEvent{Op: AdminEnqueue, Pipeline: "gate", Change: &a})
	eq(t, "unapproved change refused", h.queueItems("gate"), nil)
	h.admin(AdminEvent{Op: AdminEnqueue, Pipeline: "gate", Change: &a, Force: true})
	h.approve("B")
	eq(t, "running", h.running(), []string{"gate A: A", "gate B: A+B"})
	h.admin(AdminEvent{Op: AdminDequeue, Pipeline: "gate", Changes: []ChangeKey{h.key("A")}})
	eq(t, "cancels", h.cancels, []string{"gate A: A", "gate B: A+B"})
	eq(t, "running", h.running(), []string{"gate B: B"})
}
