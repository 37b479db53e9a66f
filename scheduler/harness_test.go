package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/store"
)

const testPipelines = `
pipelines:
  - name: gate
    manager: dependent
    precedence: high
    trigger:
      - event: [comment-added]
        approval:
          - {label: Code-Review, value: [2]}
    require:
      open: true
      current-patchset: true
      approval:
        - {label: Code-Review, value: [2]}
    report:
      success:
        labels: {Verified: 2}
        submit: true
        message: Build succeeded (gate pipeline).
      failure:
        labels: {Verified: -2}
        message: Build failed (gate pipeline).
      merge-conflict:
        labels: {Verified: -2}
        message: Merge failed.
`

const settle = 5 * time.Second

// env is a scheduler's world: fakes, a clock and a store file that
// survive restarts.
type env struct {
	t      testing.TB
	clock  *fakeClock
	gerrit *fakeGerrit
	merger *fakeMerger
	builds *fakeBuilds
	engine *pipeline.Engine
	path   string
	grace  time.Duration
	// realTime runs the scheduler on the system clock without a settle
	// delay and without logs (benchmarks).
	realTime bool

	st     *store.Store
	stream chan gerrit.StreamItem
	cancel context.CancelFunc
	done   chan error
}

func newEnv(t testing.TB) *env {
	t.Helper()
	cfg, err := pipeline.ParseConfig("pipelines.yaml", []byte(testPipelines))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pipeline.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: newFakeClock(), gerrit: newFakeGerrit(), merger: &fakeMerger{}, builds: newFakeBuilds(),
		engine: eng, path: filepath.Join(t.TempDir(), "seakeeper.db"), grace: time.Second}
	t.Cleanup(func() {
		if e.cancel != nil {
			e.stop()
		}
	})
	return e
}

// open opens the store without a scheduler (to seed or inspect it).
func (e *env) open() *store.Store {
	e.t.Helper()
	st, err := store.Open(e.path, store.Options{NoSync: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) start() {
	e.t.Helper()
	e.st = e.open()
	o := Options{Engine: e.engine, Store: e.st, Gerrit: e.gerrit, Merger: e.merger, Builds: e.builds,
		Clock: e.clock, SettleDelay: settle, Workers: 4, StatusURL: "https://ci.example.org/",
		ShutdownGrace: e.grace, RetryBackoff: time.Second,
		Logger: slog.New(slog.NewJSONHandler(testWriter{e.t}, nil))}
	if e.realTime {
		o.Clock, o.SettleDelay, o.Logger = nil, -1, nil
	}
	s, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.stream, e.done = cancel, make(chan gerrit.StreamItem), make(chan error, 1)
	go func() { e.done <- s.Run(ctx, e.stream) }()
}

// startSynced starts the scheduler and waits for its first resync query,
// so that changes approved afterwards reach it only through events.
func (e *env) startSynced() {
	e.t.Helper()
	_, _, before := e.gerrit.snapshot()
	e.start()
	e.waitFor("the first resync query", func() bool { _, _, q := e.gerrit.snapshot(); return q > before })
}

// stop cancels Run, checks it returns within 10 s, and closes the store.
func (e *env) stop() time.Duration {
	e.t.Helper()
	begin := time.Now()
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		e.t.Fatal("Run did not return within 10 s of the cancel")
	}
	took := time.Since(begin)
	if err := e.st.Close(); err != nil {
		e.t.Error(err)
	}
	return took
}

func (e *env) send(ev *gerrit.Event) {
	e.t.Helper()
	select {
	case e.stream <- gerrit.StreamItem{Event: ev}:
	case <-time.After(5 * time.Second):
		e.t.Fatal("the scheduler does not read the stream")
	}
}

// waitFor polls cond for up to 10 s.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// advanceUntil moves the clock a second at a time until cond holds.
func (e *env) advanceUntil(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		e.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) inboxLen() int {
	in, err := e.st.Inbox(0)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(in)
}

func (e *env) outbox() []pipeline.Action {
	out, err := e.st.Outbox()
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// settleNow waits until the inbox holds n entries, then moves the clock
// past the settle delay.
func (e *env) settleNow(n int) {
	e.t.Helper()
	e.waitFor("events in the inbox", func() bool { return e.inboxLen() >= n })
	e.clock.Advance(settle + time.Second)
}

func openChange(n, ps int, approved bool) pipeline.Change {
	c := pipeline.Change{Project: "org/a", Branch: "main", Number: n, Patchset: ps,
		Ref: refOf(n, ps), Commit: commitOf(n, ps), Status: pipeline.StatusNew}
	if approved {
		c.Approvals = []pipeline.Approval{{Label: "Code-Review", Value: 2, By: "alice"}}
	}
	return c
}

func refOf(n, ps int) string { return fmt.Sprintf("refs/changes/%02d/%d/%d", n%100, n, ps) }

func commitOf(n, ps int) string { return fmt.Sprintf("%040x", n*1000+ps) }

// approval is the stream event of a Code-Review +2 on patchset ps.
func approval(n, ps int) *gerrit.Event {
	return &gerrit.Event{
		Type:    "comment-added",
		Project: "org/a",
		Change:  &gerrit.Change{Project: "org/a", Branch: "main", Number: gerrit.FlexInt(n), Status: "NEW"},
		PatchSet: &gerrit.PatchSet{Number: gerrit.FlexInt(ps), Revision: commitOf(n, ps), Ref: refOf(n, ps),
			Approvals: []gerrit.Approval{{Type: "Code-Review", Value: 2}}},
		Author:    &gerrit.Account{Username: "alice"},
		Approvals: []gerrit.Approval{{Type: "Code-Review", Value: 2}},
		Comment:   "Patch Set " + strconv.Itoa(ps) + ": Code-Review+2",
	}
}

// testWriter sends log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func storeTurn(s *pipeline.State, acts []pipeline.Action) store.Turn {
	var durable []pipeline.Action
	for _, a := range acts {
		if a.Kind != pipeline.ActNotice {
			durable = append(durable, a)
		}
	}
	return store.Turn{State: s, Emitted: durable}
}
