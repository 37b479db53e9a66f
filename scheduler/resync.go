package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/store"
)

// A resync runs in two rounds so that only candidates are read in full: a
// goroutine queries the open changes (ResyncQuery) and hands them to the
// loop, which keeps those an approval trigger would have enqueued
// (Engine.ApprovalPipelines on the state it owns); a goroutine reads their
// snapshots with dependencies, and the loop checks them again and writes
// an admin enqueue event per pipeline to the inbox. Those events are
// applied like any other.

type resyncMsg struct {
	open  []pipeline.Change // round 1: the query's answer
	snaps []candidate       // round 2: snapshots of the candidates
	end   bool              // the resync is over
}

type candidate struct {
	change  pipeline.Change
	related []pipeline.Change
}

// resync starts a resync, or asks the one under way to run again.
func (s *Scheduler) resync(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resyncing {
		s.resyncAgain = true
		return
	}
	s.resyncing = true
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		s.send(ctx, resyncMsg{open: s.queryOpen(ctx)})
	}()
}

func (s *Scheduler) queryOpen(ctx context.Context) []pipeline.Change {
	open, err := s.o.Gerrit.QueryOpen(ctx, s.o.ResyncQuery)
	if err != nil {
		s.log.Error("resync: query failed; the next reconnect or restart resyncs", "query", s.o.ResyncQuery, "err", err)
		return nil
	}
	return open
}

func (s *Scheduler) send(ctx context.Context, m resyncMsg) {
	s.mu.Lock()
	stop := s.workCtx.Done()
	s.mu.Unlock()
	select {
	case s.cands <- m:
	case <-ctx.Done():
	case <-stop: // Run returned on an error
	}
}

// resyncMessage handles a round of a resync on the loop's goroutine.
func (s *Scheduler) resyncMessage(ctx context.Context, m resyncMsg) error {
	if m.end {
		s.mu.Lock()
		s.resyncing = false
		again := s.resyncAgain
		s.resyncAgain = false
		s.mu.Unlock()
		if again {
			s.resync(ctx)
		}
		return nil
	}
	if m.snaps == nil {
		var keys []pipeline.ChangeKey
		h := s.newReportedIndex()
		for i := range m.open {
			if len(h.unreported(s.o.Engine.ApprovalPipelines(s.state, &m.open[i]), &m.open[i])) > 0 {
				keys = append(keys, m.open[i].Key())
			}
		}
		s.log.Info("resync", "open", len(m.open), "candidates", len(keys))
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			s.send(ctx, resyncMsg{snaps: s.snapshots(ctx, keys)})
			s.send(ctx, resyncMsg{end: true})
		}()
		return nil
	}
	now := s.o.Clock.Now()
	var evs []pipeline.Event
	h := s.newReportedIndex()
	for _, c := range m.snaps {
		for _, p := range h.unreported(s.o.Engine.ApprovalPipelines(s.state, &c.change), &c.change) {
			ch := c.change
			evs = append(evs, pipeline.Event{Time: now, Admin: &pipeline.AdminEvent{
				Op: pipeline.AdminEnqueue, Pipeline: p, Change: &ch, Related: c.related}})
			s.log.Info("resync: enqueueing a change whose approval event was missed", "pipeline", p, "change", ch.String())
		}
	}
	if _, err := s.o.Store.AppendInbox(evs...); err != nil {
		return fmt.Errorf("scheduler: resync events not saved: %w", err)
	}
	return nil
}

// snapshots reads the candidates with their dependencies; a change that
// cannot be read is left to the next resync.
func (s *Scheduler) snapshots(ctx context.Context, keys []pipeline.ChangeKey) []candidate {
	out := []candidate{}
	for _, k := range keys {
		snap, err := s.o.Gerrit.ChangeSnapshot(ctx, k)
		if err != nil {
			s.log.Warn("resync: cannot read change", "change", k.String(), "err", err)
			continue
		}
		related, err := s.related(ctx, snap)
		if err != nil {
			s.log.Warn("resync: cannot read related changes", "change", k.String(), "err", err)
			continue
		}
		out = append(out, candidate{change: *snap, related: related})
	}
	return out
}

// finished turns the final reports among actions into history entries:
// the item left its pipeline with that outcome.
func finished(acts []pipeline.Action, now time.Time) []store.HistoryEntry {
	var out []store.HistoryEntry
	for _, a := range acts {
		if a.Kind != pipeline.ActReport || a.Report == nil || a.Report.Outcome == pipeline.OutcomeStart {
			continue
		}
		out = append(out, store.HistoryEntry{Pipeline: a.Pipeline, Project: a.Change.Project, Branch: a.Change.Branch,
			Change: a.Change.Number, Patchset: a.Change.Patchset, Ref: a.Change.Ref, Item: a.Item, BuildSet: a.BuildSet,
			Outcome: string(a.Report.Outcome), URL: a.Report.BuildURL, EnqueuedAt: a.Report.EnqueuedAt,
			StartedAt: a.Report.BuildStarted, FinishedAt: a.Report.BuildFinished})
		if out[len(out)-1].FinishedAt.IsZero() {
			out[len(out)-1].FinishedAt = now
		}
	}
	return out
}

// reportedIndex answers, from the store's history, whether a pipeline
// already reported on a patchset: a resync leaves such a change alone (a
// new approval event still enqueues it).
type reportedIndex struct {
	s    *Scheduler
	seen map[[2]string]map[[2]int]bool
}

func (s *Scheduler) newReportedIndex() *reportedIndex {
	return &reportedIndex{s: s, seen: map[[2]string]map[[2]int]bool{}}
}

func (h *reportedIndex) unreported(pipelines []string, c *pipeline.Change) []string {
	var out []string
	for _, p := range pipelines {
		k := [2]string{p, c.Project}
		m, ok := h.seen[k]
		if !ok {
			m = map[[2]int]bool{}
			hs, err := h.s.o.Store.History(p, c.Project, 0)
			if err != nil {
				h.s.log.Warn("resync: history unreadable", "pipeline", p, "project", c.Project, "err", err)
			}
			for _, e := range hs {
				m[[2]int{e.Change, e.Patchset}] = true
			}
			h.seen[k] = m
		}
		if m[[2]int{c.Number, c.Patchset}] {
			continue
		}
		out = append(out, p)
	}
	return out
}
