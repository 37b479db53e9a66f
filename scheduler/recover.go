package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/store"
)

// recover re-dispatches the outbox of the last run: actions whose result
// is in the inbox already are only confirmed; prepares are run again,
// builds submitted again (the adapter adopts a Workflow that exists),
// reports posted again. Running builds are adopted first, and wanted
// builds without a Workflow are submitted again.
func (s *Scheduler) recover(ctx context.Context) error {
	outbox, err := s.o.Store.Outbox()
	if err != nil {
		return err
	}
	inbox, err := s.o.Store.Inbox(0)
	if err != nil {
		return err
	}
	merged, reported := map[string]bool{}, map[string]bool{}
	for _, e := range inbox {
		if m := e.Event.Merge; m != nil {
			merged[m.BuildSet] = true
		}
		if r := e.Event.Report; r != nil {
			reported[r.ActionID] = true
		}
	}
	var redo []pipeline.Action
	var answered []string
	builds := map[string]bool{}
	for _, a := range outbox {
		switch {
		case a.Kind == pipeline.ActPrepare && merged[a.BuildSet], a.Kind == pipeline.ActReport && reported[a.ID]:
			answered = append(answered, a.ID)
		default:
			if a.Kind == pipeline.ActBuild {
				builds[a.BuildSet] = true
			}
			redo = append(redo, a)
		}
	}
	wanted, missing := s.runningBuilds()
	res, err := s.o.Builds.Adopt(ctx, wanted)
	if err != nil {
		s.log.Warn("adopting workflows failed", "err", err)
	} else {
		s.log.Info("adopted workflows", "adopted", len(res.Adopted), "cancelled", len(res.Cancelled), "missing", len(res.Missing))
	}
	for _, bs := range res.Missing {
		if a, ok := missing[bs]; ok && !builds[bs] {
			redo = append(redo, a)
		}
	}
	s.log.Info("recovered", "outbox", len(outbox), "redispatched", len(redo), "answered", len(answered), "inbox", len(inbox))
	if len(answered) > 0 {
		if err := s.o.Store.Commit(store.Turn{Confirmed: answered}); err != nil {
			return fmt.Errorf("scheduler: %w", err)
		}
	}
	s.dispatch(redo)
	return nil
}

// runningBuilds returns the buildsets of the state whose build was
// started and has not finished, with the build action that starts each
// (the engine's own, stable ID).
func (s *Scheduler) runningBuilds() (map[string]bool, map[string]pipeline.Action) {
	wanted := map[string]bool{}
	acts := map[string]pipeline.Action{}
	for _, p := range s.state.Pipelines {
		pc := s.o.Engine.Config().Pipeline(p.Name)
		for _, q := range p.Queues {
			for _, it := range q.Items {
				bs := it.BuildSet
				if bs == nil || bs.Build == nil || bs.Build.Phase.Terminal() || bs.Build.Cancelled {
					continue
				}
				wanted[bs.ID] = true
				c := it.Change
				a := pipeline.Action{ID: "build/" + bs.ID, Kind: pipeline.ActBuild, Pipeline: p.Name, Queue: it.Queue,
					Item: it.ID, BuildSet: bs.ID, Changes: append([]pipeline.Spec(nil), bs.Changes...),
					Commits: append([]pipeline.ProjectCommit(nil), bs.Commits...),
					Change:  pipeline.Spec{Project: c.Project, Branch: c.Branch, Number: c.Number, Patchset: c.Patchset, Ref: c.Ref, Commit: c.Commit}}
				if pc != nil {
					a.Priority = pc.Priority()
				}
				acts[bs.ID] = a
			}
		}
	}
	return wanted, acts
}

// forwardBuilds appends the build adapter's results to the inbox.
func (s *Scheduler) forwardBuilds(ctx context.Context) {
	defer s.background.Done()
	results := s.o.Builds.Results()
	for {
		select {
		case <-ctx.Done():
			return
		case r, ok := <-results:
			if !ok {
				return
			}
			if _, err := s.o.Store.AppendInbox(pipeline.Event{Time: s.o.Clock.Now(), Build: &r}); err != nil {
				s.log.Error("build result not saved", "buildset", r.BuildSet, "phase", string(r.Phase), "err", err)
				continue
			}
			s.poke()
		}
	}
}

// shutdown waits up to ShutdownGrace for running actions, cancels those
// still running, commits the confirmations and returns.
func (s *Scheduler) shutdown(cancelWork context.CancelFunc) error {
	idle := make(chan struct{})
	go func() { s.workers.Wait(); close(idle) }()
	grace := time.NewTimer(s.o.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-idle:
	case <-grace.C:
		s.log.Warn("actions still running at shutdown; they stay in the outbox")
	}
	s.stopWorkers(cancelWork)
	err := s.o.Store.Commit(store.Turn{Confirmed: s.takeDone()})
	if err != nil {
		return fmt.Errorf("scheduler: final commit: %w", err)
	}
	s.log.Info("stopped")
	return nil
}

// stopWorkers cancels the workers and waits a little for them.
func (s *Scheduler) stopWorkers(cancelWork context.CancelFunc) {
	cancelWork()
	stopped := make(chan struct{})
	go func() { s.workers.Wait(); s.background.Wait(); close(stopped) }()
	t := time.NewTimer(stopWait)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.log.Warn("workers did not stop in time")
	}
}
