package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// The history entry of a finished item carries when it was enqueued and
// when its workflow ran, not when the report was written: the status page
// estimates build times from it.
func TestHistoryRecordsBuildTimes(t *testing.T) {
	e := newEnv(t)
	e.gerrit.put(openChange(1, 1, false))
	e.startSynced()
	e.gerrit.put(openChange(1, 1, true))
	enqueued := e.clock.Now()
	e.send(approval(1, 1))
	e.settleNow(1)
	e.waitFor("a build", e.builds1)
	_, act := e.builds.submitted()
	started := e.clock.Now().Add(time.Minute)
	finished := started.Add(7 * time.Minute)
	e.builds.results <- pipeline.BuildResult{BuildSet: act.BuildSet, Phase: pipeline.PhaseSucceeded,
		URL: "https://argo.example.org/wf", StartedAt: started, FinishedAt: finished}
	e.waitFor("the submit", func() bool { return e.submits(keyA1) == 1 })
	e.waitFor("the outbox to empty", func() bool { return len(e.outbox()) == 0 && e.inboxLen() == 0 })
	e.stop()

	st := e.open()
	defer st.Close()
	hs, err := st.History("gate", "org/a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 {
		t.Fatalf("history = %+v, want one entry", hs)
	}
	h := hs[0]
	if h.Outcome != string(pipeline.OutcomeSuccess) || h.Change != 1 || h.BuildSet != act.BuildSet ||
		h.URL != "https://argo.example.org/wf" || !h.StartedAt.Equal(started) || !h.FinishedAt.Equal(finished) {
		t.Errorf("history entry = %+v; want success of %s, run %s..%s at https://argo.example.org/wf",
			h, act.BuildSet, started, finished)
	}
	// Enqueued after the settle delay, from the clock the event was stamped with.
	if h.EnqueuedAt.Before(enqueued) || h.EnqueuedAt.After(started) {
		t.Errorf("enqueued at %s, want between %s and %s", h.EnqueuedAt, enqueued, started)
	}
}

// A new database numbers its items from the clock, so that a database
// started afresh (a new leader's, or a wiped one) never reuses the item
// and buildset IDs, and so the Workflow names, of an earlier one; a
// restart on the same database goes on with its own sequence.
func TestNewDatabaseNumbersItemsFromTheClock(t *testing.T) {
	e := newEnv(t)
	e.gerrit.put(openChange(1, 1, true))
	e.startSynced()
	e.send(approval(1, 1))
	e.settleNow(1)
	e.waitFor("a build", e.builds1)
	_, first := e.builds.submitted()
	base := e.clock.Now().Add(-settle - time.Second).UnixMilli()
	if want := fmt.Sprintf("gate-%d", base+1); first.Item != want {
		t.Errorf("first item of a new database = %s, want %s (the start time in ms, plus one)", first.Item, want)
	}
	e.stop()

	e.gerrit.put(openChange(2, 1, true))
	e.clock.Advance(time.Hour)
	e.start()
	e.send(approval(2, 1))
	e.settleNow(1)
	e.waitFor("the second build", func() bool { s, _ := e.builds.submitted(); return len(s) == 2 })
	_, second := e.builds.submitted()
	if want := fmt.Sprintf("gate-%d", base+2); second.Item != want {
		t.Errorf("after a restart the item is %s, want %s: the same database goes on with its sequence", second.Item, want)
	}
}
