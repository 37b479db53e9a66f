package pipeline

import "testing"

func TestApprovalPipelinesFindsApprovalsWhoseEventsWereLost(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.change("C", "org/a")
	h.approve("B") // B is in the gate already
	for _, n := range []string{"A", "B"} {
		h.get(n).Approvals = []Approval{{Label: "Code-Review", Value: 2, By: "bob"}}
	}
	h.get("C").Approvals = []Approval{{Label: "Code-Review", Value: 2}, {Label: "Code-Review", Value: -2}}
	cases := map[string][]string{
		"A": {"gate"}, // approved, event lost: the gate
		"B": nil,      // already queued
		"C": nil,      // rejected by Code-Review -2
	}
	for name, want := range cases {
		got := h.e.ApprovalPipelines(h.s, h.get(name))
		if len(got) != len(want) || len(want) > 0 && got[0] != want[0] {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	// Check is triggered by uploads and comments, which are not replayed.
	h.get("A").Approvals = nil
	if got := h.e.ApprovalPipelines(h.s, h.get("A")); len(got) != 0 {
		t.Errorf("unapproved A: got %v", got)
	}
}
