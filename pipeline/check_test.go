package pipeline

import (
	"strings"
	"testing"
)

func TestCheckAbandonCancelsWithoutReport(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.upload("A")
	h.abandon("A")
	eq(t, "cancels", h.cancels, []string{"check A: A"})
	eq(t, "reports", h.reportLines("check"), []string{"check A start"})
	eq(t, "queue", h.queueItems("check"), nil)
}

func TestCheckNewPatchsetSupersedesOldItem(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.upload("A")
	h.newPatchset("A")
	eq(t, "cancels", h.cancels, []string{"check A1: A1"})
	eq(t, "running", h.running(), []string{"check A2: A2"})
	h.releaseAll()
	eq(t, "reports", h.reportLines("check"), []string{"check A1 start", "check A2 start", "check A2 success Verified+1"})
}

func TestCheckRecheckWhileQueuedIsIgnoredAndAfterwardsRetests(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.upload("A")
	h.recheck("A")
	eq(t, "one item", h.queueItems("check"), []string{"check-q1:A"})
	h.releaseAll("A")
	h.recheck("A")
	h.releaseAll()
	eq(t, "reports", h.reportLines("check"), []string{
		"check A start", "check A failure Verified-1", "check A start", "check A success Verified+1"})
	h.trigger("comment-added", h.get("A"), func(ev *TriggerEvent) { ev.Comment = "please recheck this" })
	eq(t, "a comment that is not exactly recheck", h.queueItems("check"), nil)
}

func TestCheckIgnoresEventsAboutOldPatchsets(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.get("A").Patchset = 2
	h.trigger("comment-added", h.get("A"), func(ev *TriggerEvent) { ev.Comment = "recheck"; ev.Patchset = 1 })
	eq(t, "queue", h.queueItems("check"), nil)
}

func TestMergerErrorsAreRetriedThenReported(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.mergeErrors = 2
	h.upload("A")
	eq(t, "running after two retries", h.running(), []string{"check A: A"})
	prepares := 0
	for _, a := range h.actions {
		if a.Kind == ActPrepare {
			prepares++
		}
	}
	if prepares != 3 {
		t.Fatalf("prepares = %d, want 3", prepares)
	}
	h.change("B", "org/a")
	h.mergeErrors = 3
	h.upload("B")
	eq(t, "reports", h.reportLines("check")[1:], []string{"check B start", "check B failure Verified-1"})
	if msg := messageOf(h, "B", OutcomeFailure); !strings.Contains(msg, "connection reset") {
		t.Fatalf("report should quote the merger: %q", msg)
	}
}

func TestConfigErrorReportedWithFallbackLabels(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	h.upload("A")
	bs := h.builds[0].act.BuildSet
	h.builds[0].finished = true
	h.apply(Event{Build: &BuildResult{BuildSet: bs, ConfigError: "seakeeper.yaml:12: unknown key \"entrypont\""}})
	eq(t, "reports", h.reportLines("check"), []string{"check A start", "check A config-error Verified-1"})
	if msg := messageOf(h, "A", OutcomeConfigError); !strings.Contains(msg, "seakeeper.yaml:12") {
		t.Fatalf("report should carry the line: %q", msg)
	}
}

func TestGateChangeLosingApprovalIsDequeuedWithNotice(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.approve("B")
	h.approve("C")
	h.vote("B", "Code-Review", -2)
	eq(t, "cancels", h.cancels, []string{"gate B: A+B", "gate C: A+B+C"})
	eq(t, "running", h.running(), []string{"gate A: A", "gate C: A+C"})
	if msg := messageOf(h, "B", OutcomeDequeued); !strings.Contains(msg, "it has Code-Review -2") {
		t.Fatalf("notice: %q", msg)
	}
}

func TestWorkInProgressAndPrivateDequeue(t *testing.T) {
	h := gateABC(t)
	h.approve("A")
	h.upload("B")
	h.get("A").WIP = true
	h.trigger("wip-state-changed", h.get("A"), nil)
	h.get("B").Private = true
	h.trigger("private-state-changed", h.get("B"), nil)
	eq(t, "cancels", h.cancels, []string{"gate A: A", "check B: B"})
	eq(t, "gate", h.queueItems("gate"), nil)
	eq(t, "check", h.queueItems("check"), nil)
}

func TestStaleSnapshotDoesNotRewindAnItem(t *testing.T) {
	h := newHarness(t)
	h.change("A", "org/a")
	old := *h.get("A")
	h.newPatchset("A") // A2 in check
	// An event delivered late carries the patchset-1 snapshot.
	h.trigger("comment-added", &old, func(ev *TriggerEvent) { ev.Comment = "looks good" })
	p := h.s.Pipeline("check")
	if items := p.Items(); len(items) != 1 || items[0].Change.Patchset != 2 {
		t.Fatalf("items after a stale snapshot: %v", h.queueItems("check"))
	}
	eq(t, "running", h.running(), []string{"check A2: A2"})
}
