package pipeline

import "testing"

func TestSupercedentKeepsRunningItemAndNewestWaiting(t *testing.T) {
	h := newHarness(t)
	h.refUpdated("org/a", "refs/heads/master", "r0", "r1")
	h.refUpdated("org/a", "refs/heads/master", "r1", "r2")
	h.refUpdated("org/a", "refs/heads/master", "r2", "r3")
	h.refUpdated("org/a", "refs/heads/master", "r3", "r4")
	h.refUpdated("org/a", "refs/heads/stable", "s0", "s1")
	eq(t, "queues", h.queueItems("post"), []string{
		"org/a@refs/heads/master:org/a:master@r1", "org/a@refs/heads/master:org/a:master@r4",
		"org/a@refs/heads/stable:org/a:stable@s1"})
	eq(t, "running", h.running(), []string{"post org/a:master@r1: org/a:master@r1", "post org/a:stable@s1: org/a:stable@s1"})
	h.releaseLabel("post org/a:master@r1: org/a:master@r1", PhaseSucceeded)
	eq(t, "running", h.running(), []string{"post org/a:stable@s1: org/a:stable@s1", "post org/a:master@r4: org/a:master@r4"})
	eq(t, "no reports for refs", h.reportLines("post"), nil)
	h.refUpdated("org/a", "refs/heads/master", "r4", "0000000000000000000000000000000000000000")
	eq(t, "a deletion tests nothing", h.running(), []string{"post org/a:stable@s1: org/a:stable@s1", "post org/a:master@r4: org/a:master@r4"})
}

func TestFailFastCancelsAndReportsAtOnce(t *testing.T) {
	for _, failFast := range []bool{false, true} {
		h := newHarness(t, func(c *Config) { c.Pipelines[1].FailFast = failFast })
		h.change("A", "org/a")
		h.change("B", "org/a")
		h.approve("A")
		h.approve("B")
		bs := h.builds[0].act.BuildSet
		h.apply(Event{Build: &BuildResult{BuildSet: bs, Phase: PhaseRunning,
			Nodes: []NodeResult{{Name: "unit", Phase: PhaseFailed}, {Name: "lint", Phase: PhaseRunning}}}})
		// Either way B no longer counts on A.
		if failFast {
			eq(t, "fail-fast cancels", h.cancels, []string{"gate A: A", "gate B: A+B"})
			eq(t, "fail-fast reports", h.reportLines("gate")[2:], []string{"gate A failure Verified-2"})
			eq(t, "running", h.running(), []string{"gate B: B"})
		} else {
			eq(t, "cancels", h.cancels, []string{"gate B: A+B"})
			eq(t, "no report while A runs", h.reportLines("gate")[2:], nil)
			eq(t, "running", h.running(), []string{"gate A: A", "gate B: B"})
			h.release("gate", "A", PhaseFailed)
			eq(t, "reports", h.reportLines("gate")[2:], []string{"gate A failure Verified-2"})
		}
	}
}

func TestWorkflowVerdictWinsOverAFailedNode(t *testing.T) {
	// A workflow may tolerate a failed node (continueOn). While it runs,
	// the failed node makes A failing and B is tested without it; once A
	// succeeds after all, it merges, and B is tested on top of it again.
	h := newHarness(t)
	h.change("A", "org/a")
	h.change("B", "org/a")
	h.approve("A")
	h.approve("B")
	bs := h.builds[0].act.BuildSet
	h.apply(Event{Build: &BuildResult{BuildSet: bs, Phase: PhaseRunning,
		Nodes: []NodeResult{{Name: "flaky-optional", Phase: PhaseFailed}}}})
	h.release("gate", "A", PhaseSucceeded)
	h.release("gate", "B", PhaseSucceeded)
	eq(t, "merged", h.merged, []string{"A", "B"})
	eq(t, "builds", h.allBuilds(), []string{"gate A: A", "gate B: A+B", "gate B: B", "gate B: A+B"})
	eq(t, "cancels", h.cancels, []string{"gate B: A+B", "gate B: B"})
}
