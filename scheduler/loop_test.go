package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

var keyA1 = pipeline.ChangeKey{Project: "org/a", Number: 1}

func (e *env) submits(k pipeline.ChangeKey) int {
	_, s, _ := e.gerrit.snapshot()
	return s[k]
}

func (e *env) reviews() []review {
	r, _, _ := e.gerrit.snapshot()
	return r
}

func (e *env) builds1() bool {
	s, _ := e.builds.submitted()
	return len(s) == 1
}

// stateItems counts the items of the stored state (with the scheduler
// stopped).
func (e *env) stateItems() int {
	st := e.open()
	defer st.Close()
	s, err := st.Load()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, p := range s.Pipelines {
		n += len(p.Items())
	}
	return n
}

func TestApprovalToMerge(t *testing.T) {
	e := newEnv(t)
	e.gerrit.put(openChange(1, 1, false))
	e.startSynced()
	e.gerrit.put(openChange(1, 1, true))
	e.send(approval(1, 1))
	e.settleNow(1)
	e.waitFor("a build", e.builds1)
	if n := e.merger.total(); n != 1 {
		t.Errorf("prepares = %d, want 1", n)
	}
	_, act := e.builds.submitted()
	if act.Change.Key() != keyA1 || len(act.Commits) != 1 {
		t.Errorf("build action = %+v", act)
	}
	e.builds.finish(pipeline.PhaseSucceeded, e.clock.Now())
	e.waitFor("the submit", func() bool { return e.submits(keyA1) == 1 })
	e.waitFor("the outbox to empty", func() bool { return len(e.outbox()) == 0 && e.inboxLen() == 0 })
	rs := e.reviews()
	if len(rs) != 1 {
		t.Fatalf("reviews = %+v, want 1", rs)
	}
	r := rs[0]
	if r.in.Labels["Verified"] != 2 || r.rev != commitOf(1, 1) || r.in.Tag != gerrit.ReportTag("gate") ||
		!strings.Contains(r.in.Message, "https://ci.example.org/#") {
		t.Errorf("review = %+v", r)
	}
	e.stop()
	if n := e.stateItems(); n != 0 {
		t.Errorf("items left after the merge: %d", n)
	}
}

// An event in the inbox survives a stop before its turn.
func TestInboxSurvivesCrashBeforeTurn(t *testing.T) {
	e := newEnv(t)
	e.gerrit.put(openChange(1, 1, false))
	e.startSynced()
	e.gerrit.put(openChange(1, 1, true))
	e.send(approval(1, 1))
	e.waitFor("the event in the inbox", func() bool { return e.inboxLen() == 1 })
	e.stop()
	if n := e.merger.total(); n != 0 {
		t.Fatalf("prepared before the settle delay: %d", n)
	}
	// The resync of the restart would find the approval too: hide it
	// from the query so that only the inbox can enqueue the change.
	e.gerrit.mu.Lock()
	e.gerrit.hideQuery = true
	e.gerrit.mu.Unlock()
	e.clock.Advance(settle + time.Second)
	e.start()
	e.waitFor("a build after the restart", e.builds1)
	if n := e.merger.total(); n != 1 {
		t.Errorf("prepares = %d, want 1", n)
	}
}

func TestStalePatchsetDropped(t *testing.T) {
	e := newEnv(t)
	e.gerrit.put(openChange(1, 2, false)) // patchset 2 is current, not approved
	e.start()
	e.send(approval(1, 1))
	e.settleNow(1)
	e.waitFor("the event to be consumed", func() bool { return e.inboxLen() == 0 })
	e.stop()
	if n := e.merger.total(); n != 0 {
		t.Errorf("prepares = %d, want 0", n)
	}
	if n := e.stateItems(); n != 0 {
		t.Errorf("items = %d, want 0", n)
	}
}

func TestResyncAfterReconnect(t *testing.T) {
	e := newEnv(t)
	e.startSynced()
	// The approval happens while the stream is down: no event.
	e.gerrit.put(openChange(1, 1, true))
	e.stream <- gerrit.StreamItem{Resync: gerrit.ResyncConnected}
	e.waitFor("a build", e.builds1)
	_, act := e.builds.submitted()
	if act.Change.Key() != keyA1 {
		t.Errorf("build of %s", act.Change)
	}
}

func TestRefusedSubmitReportsMergeFailure(t *testing.T) {
	e := newEnv(t)
	e.gerrit.submitErr = func(k pipeline.ChangeKey, _ int) error {
		return &gerrit.SubmitError{Kind: gerrit.SubmitConflict, Change: k, Status: 409, Message: "merge conflict in README"}
	}
	e.gerrit.put(openChange(1, 1, false))
	e.startSynced()
	e.gerrit.put(openChange(1, 1, true))
	e.send(approval(1, 1))
	e.settleNow(1)
	e.waitFor("a build", e.builds1)
	e.builds.finish(pipeline.PhaseSucceeded, e.clock.Now())
	e.waitFor("two reports", func() bool { return len(e.reviews()) == 2 })
	e.waitFor("the outbox to empty", func() bool { return len(e.outbox()) == 0 && e.inboxLen() == 0 })
	rs := e.reviews()
	if n := e.submits(keyA1); n != 1 {
		t.Errorf("submits = %d, want 1", n)
	}
	last := rs[1]
	if last.in.Labels["Verified"] != -2 || !strings.Contains(last.in.Message, "merge conflict in README") {
		t.Errorf("merge failure report = %+v", last)
	}
	// Still approved, but reported on this patchset: a resync leaves it.
	_, _, q := e.gerrit.snapshot()
	e.stream <- gerrit.StreamItem{Resync: gerrit.ResyncDroppedOutput}
	e.waitFor("the resync query", func() bool { _, _, q2 := e.gerrit.snapshot(); return q2 > q })
	time.Sleep(50 * time.Millisecond)
	if n := e.merger.total(); n != 1 {
		t.Errorf("prepares after the resync = %d, want 1", n)
	}
	e.stop()
	if n := e.stateItems(); n != 0 {
		t.Errorf("items = %d, want 0", n)
	}
}

func TestTransientSubmitRetried(t *testing.T) {
	e := newEnv(t)
	e.gerrit.submitErr = func(k pipeline.ChangeKey, attempt int) error {
		if attempt == 1 {
			return &gerrit.SubmitError{Kind: gerrit.SubmitTransient, Change: k, Status: 503}
		}
		return nil
	}
	e.gerrit.put(openChange(1, 1, false))
	e.startSynced()
	e.gerrit.put(openChange(1, 1, true))
	e.send(approval(1, 1))
	e.settleNow(1)
	e.waitFor("a build", e.builds1)
	e.builds.finish(pipeline.PhaseSucceeded, e.clock.Now())
	e.waitFor("the first submit", func() bool { return e.submits(keyA1) == 1 })
	e.advanceUntil("the second submit", func() bool { return e.submits(keyA1) >= 2 })
	e.waitFor("the outbox to empty", func() bool { return len(e.outbox()) == 0 && e.inboxLen() == 0 })
	e.stop()
	if n := e.submits(keyA1); n != 2 {
		t.Errorf("submits = %d, want 2", n)
	}
	if n := e.stateItems(); n != 0 {
		t.Errorf("items = %d, want 0", n)
	}
}

func TestShutdownWithSlowWorker(t *testing.T) {
	e := newEnv(t)
	e.merger.block = true
	e.gerrit.put(openChange(1, 1, false))
	e.startSynced()
	e.gerrit.put(openChange(1, 1, true))
	e.send(approval(1, 1))
	e.settleNow(1)
	e.waitFor("a prepare", func() bool { return e.merger.total() == 1 })
	if took := e.stop(); took > 10*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	st := e.open()
	out, err := st.Outbox()
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Kind != pipeline.ActPrepare {
		t.Fatalf("outbox after shutdown = %+v, want the prepare", out)
	}
	// The next start prepares again.
	e.merger.mu.Lock()
	e.merger.block = false
	e.merger.mu.Unlock()
	e.start()
	e.waitFor("a build after the restart", e.builds1)
}

// The snapshot of a needed change rides along the re-read event: the gate
// enqueues it ahead of the approved change that needs it.
func TestRelatedSnapshotsEnqueueNeededChange(t *testing.T) {
	e := newEnv(t)
	key2 := pipeline.ChangeKey{Project: "org/a", Number: 2}
	c1, c2 := openChange(1, 1, true), openChange(2, 1, false)
	c1.NeededBy = []pipeline.ChangeKey{key2}
	c2.Needs = []pipeline.Need{{Change: keyA1, Patchset: 1}}
	e.gerrit.put(c1)
	e.gerrit.put(c2)
	e.gerrit.mu.Lock()
	e.gerrit.hideQuery = true // only the event may enqueue
	e.gerrit.mu.Unlock()
	e.startSynced()
	c2.Approvals = []pipeline.Approval{{Label: "Code-Review", Value: 2, By: "alice"}}
	e.gerrit.put(c2)
	e.send(approval(2, 1))
	e.settleNow(1)
	e.waitFor("two prepares", func() bool { return e.merger.total() == 2 })
	e.stop()
	st := e.open()
	defer st.Close()
	s, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	items := s.Pipeline("gate").Items()
	if len(items) != 2 || items[0].Change.Key() != keyA1 || items[1].Change.Key() != key2 {
		t.Fatalf("gate items: %+v", items)
	}
}

// A failed re-read keeps the event in the inbox; it is retried after the
// backoff and then applied.
func TestFailedRereadRetried(t *testing.T) {
	e := newEnv(t)
	e.gerrit.put(openChange(1, 1, false))
	e.startSynced()
	e.gerrit.mu.Lock()
	e.gerrit.snapFails = 2
	e.gerrit.mu.Unlock()
	e.gerrit.put(openChange(1, 1, true))
	e.send(approval(1, 1))
	e.settleNow(1)
	e.waitFor("the re-reads to fail", func() bool {
		e.gerrit.mu.Lock()
		defer e.gerrit.mu.Unlock()
		return e.gerrit.snapFails == 1
	})
	if e.inboxLen() != 1 || e.merger.total() != 0 {
		t.Fatalf("after a failed re-read: inbox %d, prepares %d", e.inboxLen(), e.merger.total())
	}
	e.advanceUntil("a build", e.builds1)
	if n := e.merger.total(); n != 1 {
		t.Errorf("prepares = %d, want 1", n)
	}
}
