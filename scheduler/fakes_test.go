package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// fakeClock is a manual clock: timers fire when Advance reaches them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       chan time.Time
	at      time.Time
	clk     *fakeClock
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d), clk: c}
	if d <= 0 {
		t.fired = true
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if t.stopped {
			continue
		}
		if !t.at.After(c.now) {
			t.fired = true
			t.c <- c.now
			continue
		}
		keep = append(keep, t)
	}
	c.timers = keep
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

type review struct {
	key pipeline.ChangeKey
	rev string
	in  gerrit.ReviewInput
}

// fakeGerrit holds changes in memory; a submit merges unless submitErr
// says otherwise.
type fakeGerrit struct {
	mu        sync.Mutex
	changes   map[pipeline.ChangeKey]*pipeline.Change
	reviews   []review
	submits   map[pipeline.ChangeKey]int
	queries   int
	hideQuery bool // QueryOpen finds nothing
	snapFails int  // the next snapFails ChangeSnapshot calls fail
	submitErr func(key pipeline.ChangeKey, attempt int) error
}

func newFakeGerrit() *fakeGerrit {
	return &fakeGerrit{changes: map[pipeline.ChangeKey]*pipeline.Change{}, submits: map[pipeline.ChangeKey]int{}}
}

func (g *fakeGerrit) put(c pipeline.Change) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.changes[c.Key()] = &c
}

func (g *fakeGerrit) ChangeSnapshot(_ context.Context, key pipeline.ChangeKey) (*pipeline.Change, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.snapFails > 0 {
		g.snapFails--
		return nil, errors.New("gerrit is down")
	}
	c, ok := g.changes[key]
	if !ok {
		return nil, fmt.Errorf("change %s: %w", key, gerrit.ErrNotFound)
	}
	cp := *c
	cp.Approvals = append([]pipeline.Approval(nil), c.Approvals...)
	return &cp, nil
}

func (g *fakeGerrit) QueryOpen(context.Context, string) ([]pipeline.Change, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queries++
	var out []pipeline.Change
	if g.hideQuery {
		return nil, nil
	}
	for _, c := range g.changes {
		if c.Status == "" || c.Status == pipeline.StatusNew {
			out = append(out, *c)
		}
	}
	return out, nil
}

func (g *fakeGerrit) Review(_ context.Context, key pipeline.ChangeKey, rev string, in gerrit.ReviewInput) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reviews = append(g.reviews, review{key, rev, in})
	return nil
}

func (g *fakeGerrit) Submit(_ context.Context, key pipeline.ChangeKey, _ string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.submits[key]++
	if g.submitErr != nil {
		if err := g.submitErr(key, g.submits[key]); err != nil {
			return err
		}
	}
	if c := g.changes[key]; c != nil {
		c.Status = pipeline.StatusMerged
	}
	return nil
}

func (g *fakeGerrit) snapshot() ([]review, map[pipeline.ChangeKey]int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := map[pipeline.ChangeKey]int{}
	for k, v := range g.submits {
		s[k] = v
	}
	return append([]review(nil), g.reviews...), s, g.queries
}

// fakeMerger answers every prepare with a commit per change; block, when
// set, holds every prepare until its context ends.
type fakeMerger struct {
	mu    sync.Mutex
	calls map[string]int
	block bool
}

func (m *fakeMerger) Prepare(ctx context.Context, bs string, changes []pipeline.Spec, _ string) pipeline.MergeResult {
	m.mu.Lock()
	if m.calls == nil {
		m.calls = map[string]int{}
	}
	m.calls[bs]++
	block := m.block
	m.mu.Unlock()
	if block {
		<-ctx.Done()
		return pipeline.MergeResult{BuildSet: bs, Error: ctx.Err().Error()}
	}
	res := pipeline.MergeResult{BuildSet: bs}
	for _, c := range changes {
		res.Commits = append(res.Commits, pipeline.ProjectCommit{Project: c.Project, Branch: c.Branch, Commit: "spec-" + bs})
	}
	return res
}

func (m *fakeMerger) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, v := range m.calls {
		n += v
	}
	return n
}

// fakeBuilds records submits; the test finishes builds with finish.
type fakeBuilds struct {
	mu       sync.Mutex
	submits  map[string]int
	cancels  []string
	adopted  []map[string]bool
	missing  bool // Adopt reports every wanted buildset missing
	results  chan pipeline.BuildResult
	lastSubm pipeline.Action
}

func newFakeBuilds() *fakeBuilds {
	return &fakeBuilds{submits: map[string]int{}, results: make(chan pipeline.BuildResult, 16)}
}

func (b *fakeBuilds) Submit(_ context.Context, a pipeline.Action) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.submits[a.BuildSet]++
	b.lastSubm = a
	return nil
}

func (b *fakeBuilds) Cancel(_ context.Context, bs string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cancels = append(b.cancels, bs)
	return nil
}

func (b *fakeBuilds) Adopt(_ context.Context, wanted map[string]bool) (argo.AdoptResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.adopted = append(b.adopted, wanted)
	var res argo.AdoptResult
	for bs := range wanted {
		if b.missing {
			res.Missing = append(res.Missing, bs)
		} else {
			res.Adopted = append(res.Adopted, bs)
		}
	}
	return res, nil
}

func (b *fakeBuilds) Results() <-chan pipeline.BuildResult { return b.results }

func (b *fakeBuilds) submitted() (map[string]int, pipeline.Action) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for k, v := range b.submits {
		out[k] = v
	}
	return out, b.lastSubm
}

// finish reports the last submitted build's result.
func (b *fakeBuilds) finish(phase pipeline.Phase, at time.Time) {
	_, a := b.submitted()
	b.results <- pipeline.BuildResult{BuildSet: a.BuildSet, Phase: phase, StartedAt: at, FinishedAt: at}
}
