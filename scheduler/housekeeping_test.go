package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// armed reports whether c has a pending timer due d from now.
func armed(c *fakeClock, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if !t.stopped && !t.fired && t.at.Equal(c.now.Add(d)) {
			return true
		}
	}
	return false
}

// TestTickMovesTheCoreClock: with a TickInterval, the loop applies a Tick
// every interval of its clock, with no other event; the core's clock
// (State.Now) follows, in the published snapshot and in the store.
func TestTickMovesTheCoreClock(t *testing.T) {
	const every = 30 * time.Second
	e := newEnv(t)
	e.st = e.open()
	s, err := New(Options{Engine: e.engine, Store: e.st, Gerrit: e.gerrit, Merger: e.merger, Builds: e.builds,
		Clock: e.clock, SettleDelay: settle, TickInterval: every,
		Logger: slog.New(slog.NewJSONHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.stream, e.done = cancel, make(chan gerrit.StreamItem), make(chan error, 1)
	go func() { e.done <- s.Run(ctx, e.stream) }()

	start := e.clock.Now()
	for i := 1; i <= 2; i++ {
		e.waitFor("the tick timer", func() bool { return armed(e.clock, every) })
		e.clock.Advance(every)
		want := start.Add(time.Duration(i) * every)
		e.waitFor("the tick to be applied", func() bool {
			snap := s.Snapshot()
			return snap != nil && snap.State.Now.Equal(want)
		})
		if got := s.Snapshot().Turn; got != uint64(i) {
			t.Errorf("after tick %d the snapshot is of turn %d", i, got)
		}
	}
	e.stop()
	st := e.open()
	defer st.Close()
	saved, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(2 * every); !saved.Now.Equal(want) {
		t.Errorf("stored State.Now = %v, want %v", saved.Now, want)
	}
	if in, err := st.Inbox(0); err != nil || len(in) != 0 {
		t.Errorf("inbox after the ticks: %d entries, %v", len(in), err)
	}
}

// TestNoTicksByDefault: without TickInterval the loop makes no timer of
// its own, so the harness's clock moves only what the tests ask for.
func TestNoTicksByDefault(t *testing.T) {
	tk := &ticker{clk: newFakeClock()}
	if tk.c() != nil {
		t.Error("a ticker with no interval has a channel")
	}
	if len(tk.clk.(*fakeClock).timers) != 0 {
		t.Error("a ticker with no interval made a timer")
	}
}

// recordingHousekeeper is a merger's housekeeping: it records calls, and
// Keep blocks while block is open.
type recordingHousekeeper struct {
	mu      sync.Mutex
	calls   []string // "keep", "maintain"
	live    [][]string
	entered chan struct{} // receives when Keep starts, if not nil
	block   chan struct{} // Keep waits for it to close, if not nil
	keepErr error
}

func (h *recordingHousekeeper) Keep(ctx context.Context, live []string) error {
	h.mu.Lock()
	h.calls = append(h.calls, "keep")
	h.live = append(h.live, slices.Clone(live))
	entered, block := h.entered, h.block
	h.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		<-block
	}
	return h.keepErr
}

func (h *recordingHousekeeper) Maintain(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, "maintain")
	return nil
}

func (h *recordingHousekeeper) snapshot() ([]string, [][]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls), slices.Clone(h.live)
}

// gatedMerger's Prepare records its buildset and waits for release.
type gatedMerger struct {
	mu      sync.Mutex
	started []string
	release chan struct{}
}

func (m *gatedMerger) Prepare(ctx context.Context, bs string, _ []pipeline.Spec, _ string) pipeline.MergeResult {
	m.mu.Lock()
	m.started = append(m.started, bs)
	m.mu.Unlock()
	select {
	case <-m.release:
	case <-ctx.Done():
	}
	return pipeline.MergeResult{BuildSet: bs}
}

func (m *gatedMerger) prepared() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.started)
}

// stateWith returns a state whose gate queue has items with the given
// buildsets ("" for an item that has none yet).
func stateWith(buildsets ...string) *pipeline.State {
	q := &pipeline.Queue{Name: "org/a"}
	for i, bs := range buildsets {
		it := &pipeline.Item{ID: string(rune('a' + i))}
		if bs != "" {
			it.BuildSet = &pipeline.BuildSet{ID: bs}
		}
		q.Items = append(q.Items, it)
	}
	st := pipeline.NewState()
	st.Pipelines = []*pipeline.PipelineState{{Name: "gate", Queues: []*pipeline.Queue{q}}}
	return st
}

// TestHousekeepingKeepsLiveBuildSets: every interval of its clock,
// housekeeping tells the merger to keep the buildsets of the snapshot's
// items and of the Prepares under way, then to maintain its mirrors; it
// does nothing before the scheduler has loaded its state.
func TestHousekeepingKeepsLiveBuildSets(t *testing.T) {
	const every = 10 * time.Minute
	clk := newFakeClock()
	gm := &gatedMerger{release: make(chan struct{})}
	defer close(gm.release)
	guard := newPrepareGuard(gm)
	rec := &recordingHousekeeper{}
	var mu sync.Mutex
	var snap *Snapshot
	h := &housekeeper{clock: clk, every: every, guard: guard, merger: rec, log: slog.New(slog.DiscardHandler),
		snapshot: func() *Snapshot { mu.Lock(); defer mu.Unlock(); return snap }}
	e := &env{t: t}

	// A Prepare under way, of a buildset no snapshot holds yet.
	go guard.Prepare(context.Background(), "bs-preparing", nil, "")
	e.waitFor("the Prepare to start", func() bool { return len(gm.prepared()) == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx) }()
	defer func() { cancel(); <-done }()

	// No state loaded yet: nothing to keep, nothing done.
	e.waitFor("the housekeeping timer", func() bool { return armed(clk, every) })
	clk.Advance(every)
	e.waitFor("the next housekeeping timer", func() bool { return armed(clk, every) })
	if calls, _ := rec.snapshot(); len(calls) != 0 {
		t.Fatalf("housekeeping before the state was loaded: %v", calls)
	}

	mu.Lock()
	snap = &Snapshot{State: stateWith("bs-2", "", "bs-1")}
	mu.Unlock()
	for round := 1; round <= 2; round++ {
		clk.Advance(every)
		e.waitFor("housekeeping", func() bool { calls, _ := rec.snapshot(); return len(calls) == 2*round })
		e.waitFor("the next housekeeping timer", func() bool { return armed(clk, every) })
	}
	calls, live := rec.snapshot()
	if want := []string{"keep", "maintain", "keep", "maintain"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
	for _, l := range live {
		if want := []string{"bs-1", "bs-2", "bs-preparing"}; !slices.Equal(l, want) {
			t.Errorf("Keep(%v), want Keep(%v)", l, want)
		}
	}
}

// TestPrepareWaitsForKeep: a Prepare that starts while Keep runs waits
// until Keep has returned, so Keep cannot delete the refs it writes; one
// whose context ends meanwhile gives up with an error result.
func TestPrepareWaitsForKeep(t *testing.T) {
	gm := &gatedMerger{release: make(chan struct{})}
	close(gm.release)
	guard := newPrepareGuard(gm)
	rec := &recordingHousekeeper{entered: make(chan struct{}, 1), block: make(chan struct{}), keepErr: errors.New("a mirror is broken")}
	h := &housekeeper{clock: newFakeClock(), every: time.Minute, guard: guard, merger: rec, log: slog.New(slog.DiscardHandler),
		snapshot: func() *Snapshot { return &Snapshot{State: stateWith("bs-1")} }}
	e := &env{t: t}

	onceErr := make(chan error, 1)
	go func() { onceErr <- h.once(context.Background()) }()
	<-rec.entered

	results := make(chan pipeline.MergeResult, 2)
	go func() { results <- guard.Prepare(context.Background(), "bs-new", nil, "") }()
	gone, giveUp := context.WithCancel(context.Background())
	go func() { results <- guard.Prepare(gone, "bs-gone", nil, "") }()
	e.waitFor("both Prepares to be held", func() bool { return guard.held() == 2 })
	if p := gm.prepared(); len(p) != 0 {
		t.Fatalf("prepared %v while Keep ran", p)
	}
	giveUp()
	if r := <-results; r.BuildSet != "bs-gone" || r.Error == "" {
		t.Errorf("a held Prepare whose context ended gave %+v, want an error result for bs-gone", r)
	}

	close(rec.block)
	if err := <-onceErr; err == nil || !errors.Is(err, rec.keepErr) {
		t.Errorf("once = %v, want Keep's error", err)
	}
	if r := <-results; r.BuildSet != "bs-new" || r.Error != "" {
		t.Errorf("the held Prepare gave %+v", r)
	}
	if p := gm.prepared(); !slices.Equal(p, []string{"bs-new"}) {
		t.Errorf("prepared %v after Keep, want [bs-new]", p)
	}
	if calls, _ := rec.snapshot(); !slices.Equal(calls, []string{"keep", "maintain"}) {
		t.Errorf("calls = %v: Maintain must run even when Keep failed", calls)
	}
}
