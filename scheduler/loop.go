package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/store"
)

// Scheduler is the daemon loop. Run's goroutine owns the pipeline state;
// workers only carry out actions and append their results to the inbox.
type Scheduler struct {
	o   Options
	log *slog.Logger

	sem   chan struct{} // bounds the workers (builds excepted)
	wake  chan struct{} // a worker appended to the inbox or finished
	cands chan resyncMsg
	pub   publisher

	// Owned by Run's goroutine.
	state    *pipeline.State
	inflight map[string]bool
	retries  map[uint64]*enrichRetry
	readyAt  time.Time // when the next waiting trigger is ready; zero: none

	mu          sync.Mutex
	done        []string // actions carried out, to confirm in the next commit
	resyncing   bool
	resyncAgain bool
	workCtx     context.Context
	workers     sync.WaitGroup
	background  sync.WaitGroup
}

// maxTurnBatch bounds the inbox entries one turn applies, so that a turn
// (and its commit) stays short after a backlog; the rest follows at once.
const maxTurnBatch = 512

// maxEnrichAttempts bounds the REST re-reads of one event; after that it is
// applied with what the event itself said, so that it is never lost.
const maxEnrichAttempts = 5

// stopWait is how long Run waits for workers whose context was cancelled.
const stopWait = 2 * time.Second

type enrichRetry struct {
	attempts int
	at       time.Time
}

// Run recovers from the store, resyncs with Gerrit and then runs turns
// until ctx ends: it stops reading stream, finishes the turn under way,
// gives running actions ShutdownGrace, commits what was confirmed and
// returns (nil on a clean stop). Actions not finished stay in the outbox
// for the next start. A store error ends Run: the state in memory is then
// ahead of the disk, and a restart recovers from the disk.
func (s *Scheduler) Run(ctx context.Context, stream <-chan gerrit.StreamItem) error {
	st, err := s.o.Store.Load()
	if err != nil {
		return err
	}
	if st.Seq == 0 {
		// A new database (first start, or a stale one set aside): number
		// its items from the clock, so that item IDs — and the buildsets
		// and Workflow names made from them — never repeat those of an
		// earlier database whose Workflows may still be in the cluster
		// (the adapter adopts a Workflow by its name).
		st.Seq = s.o.Clock.Now().UnixMilli()
	}
	s.state = st
	if err := s.pub.publish(st, s.o.Clock.Now()); err != nil {
		return err
	}
	s.inflight = map[string]bool{}
	s.retries = map[uint64]*enrichRetry{}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	s.mu.Lock()
	s.workCtx = workCtx
	s.mu.Unlock()

	s.background.Add(1)
	go s.forwardBuilds(workCtx)
	if err := s.recover(ctx); err != nil {
		cancelWork()
		s.stopWorkers(cancelWork)
		return err
	}
	s.resync(ctx)

	tick := &ticker{clk: s.o.Clock, every: s.o.TickInterval}
	defer tick.stop()
	for {
		if ctx.Err() != nil {
			return s.shutdown(cancelWork)
		}
		if err := s.turn(ctx); err != nil {
			s.stopWorkers(cancelWork)
			return err
		}
		var timeout <-chan time.Time
		stopTimer := func() {}
		if !s.readyAt.IsZero() {
			t := s.o.Clock.NewTimer(max(s.readyAt.Sub(s.o.Clock.Now()), 0))
			timeout, stopTimer = t.C(), func() { t.Stop() }
		}
		err := s.wait(ctx, stream, timeout, tick)
		stopTimer()
		switch {
		case err == errStop:
			return s.shutdown(cancelWork)
		case err == errStreamClosed:
			stream = nil
		case err != nil:
			s.stopWorkers(cancelWork)
			return err
		}
	}
}

var (
	errStop         = errors.New("scheduler: stopping")
	errStreamClosed = errors.New("scheduler: stream closed")
)

// wait blocks until something happens and handles it.
func (s *Scheduler) wait(ctx context.Context, stream <-chan gerrit.StreamItem, timeout <-chan time.Time, tick *ticker) error {
	select {
	case <-tick.c():
		tick.fired()
		return s.tick()
	case <-ctx.Done():
		return errStop
	case it, ok := <-stream:
		if !ok {
			return errStreamClosed
		}
		return s.intake(ctx, it, stream)
	case m := <-s.cands:
		return s.resyncMessage(ctx, m)
	case <-s.wake:
	case <-timeout:
	}
	return nil
}

// tick appends a Tick event to the inbox; the next turn applies it, which
// moves the core's clock (State.Now) on.
func (s *Scheduler) tick() error {
	if _, err := s.o.Store.AppendInbox(pipeline.Event{Time: s.o.Clock.Now(), Tick: &pipeline.Tick{}}); err != nil {
		return fmt.Errorf("scheduler: tick not saved: %w", err)
	}
	return nil
}

// ticker is the loop's periodic Tick: a timer of the scheduler's clock,
// armed again each time it fires. Its zero interval never fires.
type ticker struct {
	clk   clock.Clock
	every time.Duration
	t     clock.Timer
}

// c returns the channel of the next tick (nil: none).
func (t *ticker) c() <-chan time.Time {
	if t.every <= 0 {
		return nil
	}
	if t.t == nil {
		t.t = t.clk.NewTimer(t.every)
	}
	return t.t.C()
}

// fired makes the next c arm a new timer.
func (t *ticker) fired() { t.t = nil }

func (t *ticker) stop() {
	if t.t != nil {
		t.t.Stop()
	}
}

// poke wakes the loop.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// finish records that an action was carried out: the next commit confirms
// it.
func (s *Scheduler) finish(id string) {
	s.mu.Lock()
	s.done = append(s.done, id)
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) takeDone() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.done
	s.done = nil
	return d
}

// turn applies the ready inbox entries and commits the result in one
// transaction; only then are the emitted actions dispatched.
func (s *Scheduler) turn(ctx context.Context) error {
	start := time.Now()
	entries, err := s.o.Store.Inbox(0)
	if err != nil {
		return err
	}
	batch := s.ready(entries)
	if len(batch) > maxTurnBatch {
		batch = batch[:maxTurnBatch]
		s.poke()
	}
	events := s.enrichAll(ctx, batch)
	var consumed []uint64
	var emitted []pipeline.Action
	var applied []pipeline.Event
	for i, e := range batch {
		ev := events[i]
		if ev.fail {
			break // it and the triggers after it wait for the next turn
		}
		consumed = append(consumed, e.Seq)
		delete(s.retries, e.Seq)
		if ev.drop {
			continue
		}
		applied = append(applied, ev.event)
		emitted = append(emitted, s.o.Engine.Apply(s.state, ev.event)...)
	}
	confirmed := s.takeDone()
	for _, id := range confirmed {
		delete(s.inflight, id)
	}
	if len(consumed) == 0 && len(confirmed) == 0 {
		return nil
	}
	var durable, notices []pipeline.Action
	for _, a := range emitted {
		if a.Kind == pipeline.ActNotice {
			notices = append(notices, a)
		} else {
			durable = append(durable, a)
		}
	}
	t := store.Turn{Consumed: consumed, Emitted: durable, Confirmed: confirmed, Finished: finished(durable, s.o.Clock.Now())}
	if len(consumed) > 0 {
		if t.StateData, err = s.state.Marshal(); err != nil {
			return fmt.Errorf("scheduler: %w", err)
		}
		t.State = s.state
	}
	commitStart := time.Now()
	if err := s.o.Store.Commit(t); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	commit := time.Since(commitStart)
	if t.State != nil {
		s.pub.publishData(t.StateData, s.o.Clock.Now())
	}
	s.o.Observer.Turn(TurnStats{Commit: commit, Total: time.Since(start), Applied: applied, Emitted: emitted, State: s.state})
	for _, a := range notices {
		s.log.Info("notice", actionAttrs(a, slog.String("reason", a.Reason))...)
	}
	s.dispatch(durable)
	return nil
}

// ready picks the inbox entries to apply now, in order: results and
// operator events at once, Gerrit triggers once they have rested for the
// settle delay (and past any retry wait). The first trigger that is not
// ready holds back those after it, so triggers keep their order.
func (s *Scheduler) ready(entries []store.InboxEntry) []store.InboxEntry {
	now := s.o.Clock.Now()
	s.readyAt = time.Time{}
	var out []store.InboxEntry
	held := false
	for _, e := range entries {
		if !needsSettle(e.Event) && s.retries[e.Seq] == nil {
			out = append(out, e)
			continue
		}
		if held {
			continue
		}
		at := e.Event.Time
		if needsSettle(e.Event) {
			at = at.Add(s.o.SettleDelay)
		}
		if r := s.retries[e.Seq]; r != nil && r.at.After(at) {
			at = r.at
		}
		if at.After(now) {
			held = true
			s.readyAt = at
			continue
		}
		out = append(out, e)
	}
	return out
}

// actionAttrs are the log attributes of an action.
func actionAttrs(a pipeline.Action, extra ...any) []any {
	out := []any{
		slog.String("action", a.ID), slog.String("kind", string(a.Kind)),
		slog.String("pipeline", a.Pipeline), slog.String("item", a.Item),
		slog.String("buildset", a.BuildSet), slog.String("change", a.Change.String()),
	}
	return append(out, extra...)
}
