package scheduler

import (
	"testing"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// seedTurn applies events with the engine directly and commits them as
// one turn whose actions were never dispatched: a crash right after the
// commit. The actions of earlier seeded turns count as carried out.
func (e *env) seedTurn(evs ...pipeline.Event) []pipeline.Action {
	e.t.Helper()
	st := e.open()
	defer st.Close()
	s, err := st.Load()
	if err != nil {
		e.t.Fatal(err)
	}
	var acts []pipeline.Action
	for _, ev := range evs {
		ev.Time = e.clock.Now()
		acts = append(acts, e.engine.Apply(s, ev)...)
	}
	done, err := st.Outbox()
	if err != nil {
		e.t.Fatal(err)
	}
	t := storeTurn(s, acts)
	for _, a := range done {
		t.Confirmed = append(t.Confirmed, a.ID) // carried out before the crash
	}
	if err := st.Commit(t); err != nil {
		e.t.Fatal(err)
	}
	return acts
}

func find(acts []pipeline.Action, kind pipeline.ActionKind) *pipeline.Action {
	for i := range acts {
		if acts[i].Kind == kind {
			return &acts[i]
		}
	}
	return nil
}

func enqueueEvent(c pipeline.Change) pipeline.Event {
	return pipeline.Event{Admin: &pipeline.AdminEvent{Op: pipeline.AdminEnqueue, Pipeline: "gate", Change: &c}}
}

// A committed, undispatched report is posted once after a restart, and
// not again after another restart.
func TestOutboxRedispatchedOnce(t *testing.T) {
	e := newEnv(t)
	c := openChange(1, 1, true)
	e.gerrit.put(c)
	prep := find(e.seedTurn(enqueueEvent(c)), pipeline.ActPrepare)
	if prep == nil {
		t.Fatal("no prepare")
	}
	res := (&fakeMerger{}).Prepare(t.Context(), prep.BuildSet, prep.Changes, prep.Base)
	build := find(e.seedTurn(pipeline.Event{Merge: &res}), pipeline.ActBuild)
	if build == nil {
		t.Fatal("no build")
	}
	acts := e.seedTurn(pipeline.Event{Build: &pipeline.BuildResult{BuildSet: build.BuildSet, Phase: pipeline.PhaseSucceeded}})
	rep := find(acts, pipeline.ActReport)
	if rep == nil || !rep.Report.Submit {
		t.Fatalf("no submit report in %+v", acts)
	}
	for round := range 3 {
		e.start()
		e.waitFor("the outbox to empty", func() bool { return len(e.outbox()) == 0 && e.inboxLen() == 0 })
		e.stop()
		if n := e.submits(keyA1); n != 1 {
			t.Errorf("round %d: submits = %d, want 1", round, n)
		}
		if n := len(e.reviews()); n != 1 {
			t.Errorf("round %d: reviews = %d, want 1", round, n)
		}
	}
	if n := e.merger.total(); n != 0 {
		t.Errorf("prepares = %d, want 0", n)
	}
	if n := e.stateItems(); n != 0 {
		t.Errorf("items = %d, want 0", n)
	}
}

// A report whose result reached the inbox before the crash (but whose
// confirmation did not reach the outbox) is not posted again.
func TestAnsweredReportNotRepeated(t *testing.T) {
	e := newEnv(t)
	c := openChange(1, 1, true)
	e.gerrit.put(c)
	prep := find(e.seedTurn(enqueueEvent(c)), pipeline.ActPrepare)
	res := (&fakeMerger{}).Prepare(t.Context(), prep.BuildSet, prep.Changes, prep.Base)
	build := find(e.seedTurn(pipeline.Event{Merge: &res}), pipeline.ActBuild)
	rep := find(e.seedTurn(pipeline.Event{Build: &pipeline.BuildResult{BuildSet: build.BuildSet, Phase: pipeline.PhaseSucceeded}}), pipeline.ActReport)
	st := e.open()
	if _, err := st.AppendInbox(pipeline.Event{Time: e.clock.Now(), Report: &pipeline.ReportResult{
		ActionID: rep.ID, BuildSet: rep.BuildSet, Status: pipeline.ReportOK}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	merged := c
	merged.Status = pipeline.StatusMerged // the lost submit went through
	e.gerrit.put(merged)
	e.start()
	e.waitFor("the outbox to empty", func() bool { return len(e.outbox()) == 0 && e.inboxLen() == 0 })
	e.stop()
	if n := e.submits(keyA1); n != 0 {
		t.Errorf("submits = %d, want 0", n)
	}
	if n := e.stateItems(); n != 0 {
		t.Errorf("items = %d, want 0", n)
	}
}

// Running builds are adopted on start; one without a Workflow is
// submitted again.
func TestRecoveryAdoptsAndResubmitsBuilds(t *testing.T) {
	e := newEnv(t)
	c := openChange(1, 1, true)
	e.gerrit.put(c)
	prep := find(e.seedTurn(enqueueEvent(c)), pipeline.ActPrepare)
	res := (&fakeMerger{}).Prepare(t.Context(), prep.BuildSet, prep.Changes, prep.Base)
	build := find(e.seedTurn(pipeline.Event{Merge: &res}), pipeline.ActBuild)
	e.seedTurn() // the build was submitted, its Workflow then lost
	e.builds.missing = true
	e.start()
	e.waitFor("a resubmitted build", e.builds1)
	e.stop()
	e.builds.mu.Lock()
	defer e.builds.mu.Unlock()
	if len(e.builds.adopted) != 1 || !e.builds.adopted[0][build.BuildSet] {
		t.Errorf("adopt calls = %+v, want one wanting %s", e.builds.adopted, build.BuildSet)
	}
	if e.builds.lastSubm.ID != build.ID {
		t.Errorf("resubmitted %q, want %q", e.builds.lastSubm.ID, build.ID)
	}
}
