package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/scheduler"
	"github.com/seakeeper-ci/seakeeper/store"
)

// testMainConfig has a check (independent) and a gate (dependent)
// pipeline; org/a, org/b and the restricted org/hidden share the gate
// queue "integrated".
const testMainConfig = `gerrit:
  url: https://review.example.org/
  ssh: review.example.org:29418
  ssh-key-file: key
  known-hosts-file: known_hosts
kubernetes:
  argo-url: https://argo.example.org/
web:
  internal-url: http://seakeeper.example:8081
restricted-projects: ["secret/.*", "org/hidden"]
queues:
  - name: integrated
    projects: [org/a, org/b, org/hidden]
pipelines:
  - name: check
    description: Tests changes on request.
    manager: independent
    trigger:
      - event: [comment-added]
        comment: '(?im)^\s*recheck\s*$'
    report:
      success: {labels: {Verified: 1}}
      failure: {labels: {Verified: -1}}
  - name: gate
    description: Tests approved changes together and merges them.
    manager: dependent
    trigger:
      - event: [comment-added]
        approval: [{label: Code-Review, value: [2]}]
    require:
      approval: [{label: Code-Review, value: [2]}]
    report:
      start: {labels: {Verified: 0}}
      success: {labels: {Verified: 2}, submit: true}
      failure: {labels: {Verified: -2}}
`

const (
	testGerrit = "https://review.example.org/"
	testArgo   = "https://argo.example.org/workflows/"
)

func testConfig(t testing.TB) *scheduler.Config {
	t.Helper()
	cfg, err := scheduler.ParseMainConfig("test.yaml", []byte(testMainConfig))
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// world drives the real pipeline engine with events, as the scheduler
// would, and plays the adapters: it answers prepares, starts builds and
// submits when the test says so.
type world struct {
	t       testing.TB
	cfg     *scheduler.Config
	e       *pipeline.Engine
	st      *pipeline.State
	now     time.Time
	changes map[int]*pipeline.Change
	pending []pipeline.Action
	turn    uint64
	// onTurn, when set, sees each Apply as a scheduler turn.
	onTurn func(scheduler.TurnStats)
}

func newWorld(t testing.TB) *world {
	t.Helper()
	cfg := testConfig(t)
	e, err := pipeline.NewEngine(&cfg.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, cfg: cfg, e: e, st: pipeline.NewState(),
		now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), changes: map[int]*pipeline.Change{}}
}

// change makes an open change.
func (w *world) change(project string, number int, subject string) *pipeline.Change {
	c := &pipeline.Change{Project: project, Branch: "master", Number: number, Patchset: 1,
		Ref: fmt.Sprintf("refs/changes/%02d/%d/1", number%100, number), Commit: fmt.Sprintf("c%d", number),
		ChangeID: fmt.Sprintf("I%040d", number), Subject: subject, Owner: "alice", Status: pipeline.StatusNew,
		URL: fmt.Sprintf("%sc/%s/+/%d", testGerrit, project, number)}
	w.changes[number] = c
	return c
}

// apply applies ev at the world's clock plus step, and records the
// actions for the adapters.
func (w *world) apply(step time.Duration, ev pipeline.Event) []pipeline.Action {
	w.t.Helper()
	w.now = w.now.Add(step)
	ev.Time = w.now
	acts := w.e.Apply(w.st, ev)
	w.turn++
	if w.onTurn != nil {
		w.onTurn(scheduler.TurnStats{Commit: 2 * time.Millisecond, Total: 5 * time.Millisecond,
			Applied: []pipeline.Event{ev}, Emitted: acts, State: w.st})
	}
	w.pending = append(w.pending, acts...)
	return acts
}

func (w *world) approve(number int) {
	c := w.changes[number]
	c.Approvals = append(c.Approvals, pipeline.Approval{Label: "Code-Review", Value: 2, By: "bob"})
	snap := *c
	old := 0
	w.apply(time.Second, pipeline.Event{Trigger: &pipeline.TriggerEvent{Type: "comment-added", Project: c.Project,
		Branch: c.Branch, Change: &snap, Patchset: c.Patchset, Account: "bob", Related: w.related(c),
		Approvals: []pipeline.EventApproval{{Label: "Code-Review", Value: 2, OldValue: &old}}}})
}

// related returns snapshots of the changes c needs and is needed by.
func (w *world) related(c *pipeline.Change) []pipeline.Change {
	var out []pipeline.Change
	for _, n := range c.Needs {
		out = append(out, *w.changes[n.Change.Number])
	}
	for _, k := range c.NeededBy {
		out = append(out, *w.changes[k.Number])
	}
	return out
}

func (w *world) recheck(number int) {
	c := w.changes[number]
	snap := *c
	w.apply(time.Second, pipeline.Event{Trigger: &pipeline.TriggerEvent{Type: "comment-added", Project: c.Project,
		Branch: c.Branch, Change: &snap, Patchset: c.Patchset, Account: "carol", Comment: "recheck"}})
}

// take removes and returns the pending actions of a kind.
func (w *world) take(kind pipeline.ActionKind) []pipeline.Action {
	var out, keep []pipeline.Action
	for _, a := range w.pending {
		if a.Kind == kind {
			out = append(out, a)
		} else {
			keep = append(keep, a)
		}
	}
	w.pending = keep
	return out
}

// settle answers every prepare with commits and starts every build
// (phase Running, with its Argo URL), until nothing is pending.
func (w *world) settle() {
	for {
		progressed := false
		for _, a := range w.take(pipeline.ActPrepare) {
			progressed = true
			w.apply(time.Second, pipeline.Event{Merge: &pipeline.MergeResult{BuildSet: a.BuildSet,
				Commits: []pipeline.ProjectCommit{{Project: a.Change.Project, Branch: a.Change.Branch, Commit: "spec-" + a.BuildSet}}}})
		}
		for _, a := range w.take(pipeline.ActBuild) {
			progressed = true
			w.apply(time.Second, pipeline.Event{Build: &pipeline.BuildResult{BuildSet: a.BuildSet, Phase: pipeline.PhaseRunning,
				URL: argoURL(a.BuildSet), StartedAt: w.now.Add(time.Second)}})
		}
		if !progressed {
			return
		}
	}
}

func argoURL(bs string) string { return testArgo + "ci/" + bs + "?uid=u-" + bs }

// item returns the item of change number in the pipeline.
func (w *world) item(pipelineName string, number int) *pipeline.Item {
	w.t.Helper()
	for _, it := range w.st.Pipeline(pipelineName).Items() {
		if it.Change.Number == number {
			return it
		}
	}
	w.t.Fatalf("change %d is not in %s", number, pipelineName)
	return nil
}

// finish ends the running build of change number in the pipeline.
func (w *world) finish(step time.Duration, pipelineName string, number int, phase pipeline.Phase, nodes ...pipeline.NodeResult) {
	w.t.Helper()
	it := w.item(pipelineName, number)
	b := it.BuildSet.Build
	w.apply(step, pipeline.Event{Build: &pipeline.BuildResult{BuildSet: it.BuildSet.ID, Phase: phase, URL: b.URL,
		StartedAt: b.StartedAt, FinishedAt: w.now.Add(step), Nodes: nodes,
		Message: map[pipeline.Phase]string{pipeline.PhaseFailed: "child 'unit' failed"}[phase]}})
}

// progress reports nodes of a running build.
func (w *world) progress(step time.Duration, pipelineName string, number int, nodes ...pipeline.NodeResult) {
	it := w.item(pipelineName, number)
	b := it.BuildSet.Build
	w.apply(step, pipeline.Event{Build: &pipeline.BuildResult{BuildSet: it.BuildSet.ID, Phase: pipeline.PhaseRunning,
		URL: b.URL, StartedAt: b.StartedAt, Nodes: nodes}})
}

// submits answers the pending submitting reports: merged, with Gerrit's
// change-merged event after (or before, when mergedFirst) the result.
func (w *world) submits(mergedFirst bool) {
	for _, a := range w.take(pipeline.ActReport) {
		if a.Report == nil || !a.Report.Submit {
			continue
		}
		c := w.changes[a.Change.Number]
		c.Status = pipeline.StatusMerged
		snap := *c
		merged := pipeline.Event{Trigger: &pipeline.TriggerEvent{Type: "change-merged", Project: c.Project,
			Branch: c.Branch, Change: &snap, Patchset: c.Patchset, Account: "seakeeper"}}
		result := pipeline.Event{Report: &pipeline.ReportResult{ActionID: a.ID, BuildSet: a.BuildSet, Status: pipeline.ReportOK}}
		if mergedFirst {
			w.apply(time.Second, merged)
			w.apply(time.Second, result)
		} else {
			w.apply(time.Second, result)
			w.apply(time.Second, merged)
		}
	}
}

func (w *world) snapshot() *scheduler.Snapshot {
	return &scheduler.Snapshot{Turn: w.turn, At: w.now, State: w.st.Clone()}
}

// Item IDs of the gate scenario, by change number.
const (
	numA      = 1001 // org/a, head, running with a finished node
	numB      = 1002 // org/b, failed
	numSecret = 1003 // org/hidden: restricted
	numC      = 1004 // org/a
	numPriv   = 1005 // org/b, private
	numD      = 1006 // org/b
	numE      = 1007 // org/a
	numCheck  = 2001 // secret/tool in check: restricted
)

// gateScenario fills a world with a populated gate queue: seven changes
// approved in the shared queue (one of a restricted project, one
// private), builds running with Argo URLs, B's failed, A's with a
// finished node; A is also rechecked in the check pipeline, and a
// restricted project's change is in check too.
func gateScenario(t testing.TB) *world {
	w := newWorld(t)
	w.change("org/a", numA, "Add the frobnicator")
	w.change("org/b", numB, "Fix the widget")
	w.change("org/hidden", numSecret, "Secret thing")
	w.change("org/a", numC, "Refactor parsing")
	w.change("org/b", numPriv, "Private work").Private = true
	w.change("org/b", numD, "Bump deps")
	w.change("org/a", numE, "Document <everything> & more")
	w.change("secret/tool", numCheck, "Hidden check")
	for _, n := range []int{numA, numB, numSecret, numC, numPriv, numD, numE} {
		w.approve(n)
	}
	w.recheck(numA)
	w.recheck(numCheck)
	w.settle()
	w.finish(time.Minute, "gate", numB, pipeline.PhaseFailed,
		pipeline.NodeResult{Name: "unit", Phase: pipeline.PhaseFailed, URL: testArgo + "ci/unit-logs", Message: "exit code 1"})
	w.settle() // the items behind B are tested again without it
	w.progress(time.Minute, "gate", numA,
		pipeline.NodeResult{Name: "lint", Phase: pipeline.PhaseSucceeded, URL: testArgo + "ci/lint-logs"},
		pipeline.NodeResult{Name: "unit", Phase: pipeline.PhaseRunning})
	return w
}

// snapSource is a snapshot source the test can change.
type snapSource struct {
	mu   sync.Mutex
	snap *scheduler.Snapshot
}

func (s *snapSource) get() *scheduler.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

func (s *snapSource) set(snap *scheduler.Snapshot) {
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) NewTimer(time.Duration) clock.Timer { return stoppedTimer{} }

type stoppedTimer struct{}

func (stoppedTimer) C() <-chan time.Time { return nil }
func (stoppedTimer) Stop() bool          { return true }

// harness is a server over a snapshot source and a fake clock.
type harness struct {
	srv     *Server
	snaps   *snapSource
	clock   *fakeClock
	metrics *Metrics
}

func newHarness(t testing.TB, w *world, mod ...func(*Options)) *harness {
	t.Helper()
	h := &harness{snaps: &snapSource{}, clock: &fakeClock{now: w.now.Add(30 * time.Second)}}
	if w != nil {
		h.snaps.set(w.snapshot())
	}
	m, err := NewMetrics(MetricsOptions{Config: w.cfg, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	h.metrics = m
	o := Options{Config: w.cfg, Snapshot: h.snaps.get, Metrics: m, Clock: h.clock, Logger: slog.New(slog.DiscardHandler),
		History: func(string, string, int) ([]store.HistoryEntry, error) { return nil, nil }}
	for _, f := range mod {
		f(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	return h
}

// get serves a request and returns the recorded response.
func (h *harness) do(method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func (h *harness) get(target string) *httptest.ResponseRecorder { return h.do(http.MethodGet, target) }
