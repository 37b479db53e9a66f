package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Housekeeping: from time to time the daemon deletes the speculative refs
// of buildsets that no queue item holds any more (the merger's Keep: the
// only thing that ever deletes them) and lets git gc the mirrors it changed
// (Maintain).
//
// Keep deletes the refs of every buildset it is not told to keep, except
// those being prepared when it starts. So that it never deletes the refs
// of a live buildset, the merger the scheduler prepares with is wrapped in
// a prepareGuard: while Keep runs, new Prepares wait; the buildsets of the
// Prepares under way and of every item of a snapshot read after the pause
// began are kept. A Prepare that finished before the pause was dispatched
// after a committed turn had published its item, so the snapshot holds it.

// Housekeeper is what housekeeping needs of the merger; *merger.Merger has
// it.
type Housekeeper interface {
	// Keep deletes the speculative refs of buildsets not in live.
	Keep(ctx context.Context, live []string) error
	// Maintain runs git gc --auto where it is worth it.
	Maintain(ctx context.Context) error
}

// prepareGuard wraps the scheduler's merger: Prepares wait while Keep runs
// and are counted while they run.
type prepareGuard struct {
	m MergerAPI

	mu      sync.Mutex
	paused  chan struct{} // closed when the pause ends; nil: not paused
	waiting int           // Prepares held by the pause
	running map[string]int
}

func newPrepareGuard(m MergerAPI) *prepareGuard {
	return &prepareGuard{m: m, running: map[string]int{}}
}

// Prepare waits while housekeeping holds the guard, then prepares.
func (g *prepareGuard) Prepare(ctx context.Context, buildset string, changes []pipeline.Spec, base string) pipeline.MergeResult {
	g.mu.Lock()
	for g.paused != nil {
		ch := g.paused
		g.waiting++
		g.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
		g.mu.Lock()
		g.waiting--
		if err != nil {
			g.mu.Unlock()
			return pipeline.MergeResult{BuildSet: buildset, Error: err.Error()}
		}
	}
	g.running[buildset]++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		if g.running[buildset]--; g.running[buildset] == 0 {
			delete(g.running, buildset)
		}
		g.mu.Unlock()
	}()
	return g.m.Prepare(ctx, buildset, changes, base)
}

// pause holds new Prepares until the returned function is called, and
// returns the buildsets of the Prepares under way.
func (g *prepareGuard) pause() (running []string, resume func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	g.paused = ch
	for bs := range g.running {
		running = append(running, bs)
	}
	return running, func() {
		g.mu.Lock()
		g.paused = nil
		g.mu.Unlock()
		close(ch)
	}
}

// held returns how many Prepares wait for the pause to end.
func (g *prepareGuard) held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

// housekeeper runs housekeeping every interval of its clock.
type housekeeper struct {
	clock    clock.Clock
	every    time.Duration
	guard    *prepareGuard
	merger   Housekeeper
	snapshot func() *Snapshot // the scheduler's; nil before Run loaded the state
	log      *slog.Logger
}

// run does housekeeping every interval until ctx ends.
func (h *housekeeper) run(ctx context.Context) {
	for {
		t := h.clock.NewTimer(h.every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		if err := h.once(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("housekeeping failed; it runs again later", "err", err)
		}
	}
}

// once deletes the refs of buildsets no item holds, then lets git gc.
func (h *housekeeper) once(ctx context.Context) error {
	running, resume := h.guard.pause()
	snap := h.snapshot()
	if snap == nil {
		resume()
		return nil // the scheduler has not loaded its state yet
	}
	live := slices.Concat(running, liveBuildSets(snap.State))
	slices.Sort(live)
	live = slices.Compact(live)
	start := time.Now()
	err := h.merger.Keep(ctx, live)
	resume()
	h.log.Debug("housekeeping: kept the refs of live buildsets", "live", len(live), "took", time.Since(start), "err", err)
	return errors.Join(err, h.merger.Maintain(ctx))
}

// liveBuildSets returns the buildsets of every item of st.
func liveBuildSets(st *pipeline.State) []string {
	var out []string
	for _, p := range st.Pipelines {
		for _, q := range p.Queues {
			for _, it := range q.Items {
				if it.BuildSet != nil && it.BuildSet.ID != "" {
					out = append(out, it.BuildSet.ID)
				}
			}
		}
	}
	return out
}
