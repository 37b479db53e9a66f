package pipeline

import (
	"fmt"
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/seakeeper-ci/seakeeper/internal/fixtures"
)

// BenchmarkApply measures the cost of one event at Wikimedia's size: 2,000
// projects (the first 2,000 of its Zuul v2 layout), 10 shared gate queues of
// 50 active items with running builds, and 100 check items with running
// builds (gate=10x50,check=100/...). The target is under 1 ms per event, and
// a cost that grows with the queue the event touches, not with all items:
// the scaling events run again with 1 instead of 10 shared queues
// (gate=1x50), with 2,000 instead of 100 check items (check=2000), and with
// shared queues of 25 instead of 50 items (gate=10x25).
//
// Every sub-benchmark reports ns/event (pairs of events that restore the
// state count as two) and actions/event. Events that change the state for
// good run on a fresh copy of the queue they touch each iteration, made with
// the timer stopped.
func BenchmarkApply(b *testing.B) {
	names := benchProjectNames(b)
	if len(names) < 2000 {
		b.Fatalf("the layout lists %d projects, want at least 2,000", len(names))
	}
	names = names[:2000]

	base := benchSize{queues: 10, perQueue: 50, checks: 100}
	for _, sz := range []benchSize{
		base,
		{queues: 1, perQueue: 50, checks: 100},
		{queues: 10, perQueue: 50, checks: 2000},
		{queues: 10, perQueue: 25, checks: 100},
	} {
		w := newBenchWorld(b, names, sz)
		for _, ev := range benchEvents {
			if sz == base || ev.scale {
				b.Run(sz.String()+"/"+ev.name, func(b *testing.B) { ev.run(b, w) })
			}
		}
	}
}

// benchProjectNames returns the project names of the Wikimedia Zuul v2
// layout, in layout order.
func benchProjectNames(b *testing.B) []string {
	path := fixtures.Shared(b, "fixtures/wikimedia/zuul-v2-layout.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var layout struct {
		Projects []struct {
			Name string `yaml:"name"`
		} `yaml:"projects"`
	}
	if err := yaml.Unmarshal(data, &layout); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	seen := map[string]bool{}
	var names []string
	for _, p := range layout.Projects {
		if p.Name != "" && !seen[p.Name] {
			seen[p.Name] = true
			names = append(names, p.Name)
		}
	}
	return names
}

type benchSize struct {
	queues   int // shared gate queues
	perQueue int // items in each
	checks   int // check items
}

func (s benchSize) String() string {
	return fmt.Sprintf("gate=%dx%d,check=%d", s.queues, s.perQueue, s.checks)
}

// benchProjectsPerQueue is how many projects each shared queue holds.
const benchProjectsPerQueue = 5

// benchConfig is testConfig's check and gate pipelines at scale: shared
// queue i holds projects names[5i:5i+5]; every other project has a gate
// queue of its own. The window lets every item of a full queue, and one
// more, be active.
func benchConfig(names []string, queues int) *Config {
	cfg := testConfig(func(c *Config) {
		c.Queues = nil
		for i := 0; i < queues; i++ {
			c.Queues = append(c.Queues, QueueConfig{
				Name:     fmt.Sprintf("shared-%d", i),
				Projects: append([]string(nil), names[i*benchProjectsPerQueue:(i+1)*benchProjectsPerQueue]...),
			})
		}
		var pipelines []PipelineConfig
		for _, p := range c.Pipelines {
			if p.Name == "gate" {
				p.Window = WindowConfig{Initial: 64, Floor: 3}
			}
			if p.Name != "post" {
				pipelines = append(pipelines, p)
			}
		}
		c.Pipelines = pipelines
	})
	return cfg
}

// benchWorld is a loaded state and what the events need to know about it.
type benchWorld struct {
	size  benchSize
	names []string
	e     *Engine
	state *State // never changed: sub-benchmarks work on copies
	saved []byte // state's JSON form, to tell that it was not changed
	now   time.Time
	next  int // next change number
}

// newBenchWorld builds the state by driving the engine as the shell would:
// every change is uploaded (check) or approved (gate), every prepare is
// answered with commits and every build reported running.
func newBenchWorld(b *testing.B, names []string, size benchSize) *benchWorld {
	b.Helper()
	cfg := benchConfig(names, size.queues)
	if errs := cfg.Compile(); len(errs) > 0 {
		b.Fatalf("bench config: %v", errs)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	w := &benchWorld{size: size, names: names, e: e, now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), next: 100000}
	sh := &benchShell{w: w, s: NewState()}
	// Interleave the queues, as approvals arrive in real life.
	for i := 0; i < size.perQueue; i++ {
		for q := 0; q < size.queues; q++ {
			sh.apply(Event{Trigger: w.approveEvent(w.gateChange(q, i))})
		}
	}
	for i := 0; i < size.checks; i++ {
		sh.apply(Event{Trigger: w.uploadEvent(w.checkChange(i))})
	}
	w.state = sh.s
	w.check(b)
	return w
}

// check verifies the world is what the benchmark claims: full queues of
// active items with running builds.
func (w *benchWorld) check(b *testing.B) {
	b.Helper()
	gate, check := w.state.Pipeline("gate"), w.state.Pipeline("check")
	if len(gate.Queues) != w.size.queues {
		b.Fatalf("gate has %d queues, want %d", len(gate.Queues), w.size.queues)
	}
	for _, q := range gate.Queues {
		if len(q.Items) != w.size.perQueue {
			b.Fatalf("gate queue %s has %d items, want %d", q.Name, len(q.Items), w.size.perQueue)
		}
	}
	if len(check.Queues) != w.size.checks {
		b.Fatalf("check has %d queues, want %d", len(check.Queues), w.size.checks)
	}
	for _, p := range w.state.Pipelines {
		for _, it := range p.Items() {
			if !it.Active || it.BuildSet == nil || it.BuildSet.Build == nil || it.BuildSet.Build.Phase != PhaseRunning {
				b.Fatalf("%s item %s is not active with a running build: %+v", p.Name, it.ID, it.BuildSet)
			}
		}
	}
	if msg := checkStructure(w.e.cfg, w.state); msg != "" {
		b.Fatal(msg)
	}
	// benchClone must copy everything the JSON form holds.
	a, err := w.state.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	c, err := benchClone(w.state).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	if string(a) != string(c) {
		b.Fatal("benchClone differs from the state it copies; update it for the new fields")
	}
	w.saved = a
}

func (w *benchWorld) tick() time.Time {
	w.now = w.now.Add(time.Second)
	return w.now
}

func (w *benchWorld) newChange(project string, approved bool) *Change {
	w.next++
	n := w.next
	c := &Change{Project: project, Branch: "master", Number: n, Patchset: 1,
		Ref: fmt.Sprintf("refs/changes/%02d/%d/1", n%100, n), Commit: fmt.Sprintf("%040x", n),
		ChangeID: fmt.Sprintf("I%040x", n), Subject: fmt.Sprintf("Change %d", n), Owner: "alice",
		URL: fmt.Sprintf("https://review.example.org/c/%s/+/%d", project, n), Status: StatusNew}
	if approved {
		c.Approvals = []Approval{{Label: "Verified", Value: 1, By: "seakeeper"}, {Label: "Code-Review", Value: 2, By: "bob"}}
	}
	return c
}

// gateChange is an approved change for shared queue q; i spreads the
// changes over the queue's projects.
func (w *benchWorld) gateChange(q, i int) *Change {
	return w.newChange(w.names[q*benchProjectsPerQueue+i%benchProjectsPerQueue], true)
}

// checkChange is a change in one of the projects outside the shared queues.
func (w *benchWorld) checkChange(i int) *Change {
	first := 10 * benchProjectsPerQueue
	return w.newChange(w.names[first+i%(len(w.names)-first)], false)
}

func (w *benchWorld) approveEvent(c *Change) *TriggerEvent {
	old := 0
	return &TriggerEvent{Type: "comment-added", Project: c.Project, Branch: c.Branch, Change: c, Patchset: c.Patchset,
		Account: "bob", Comment: "Patch Set 1: Code-Review+2", Approvals: []EventApproval{{Label: "Code-Review", Value: 2, OldValue: &old}}}
}

func (w *benchWorld) uploadEvent(c *Change) *TriggerEvent {
	return &TriggerEvent{Type: "patchset-created", Project: c.Project, Branch: c.Branch, Change: c, Patchset: c.Patchset, Account: c.Owner}
}

func (w *benchWorld) abandonEvent(c *Change) *TriggerEvent {
	a := *c
	a.Status = StatusAbandoned
	return &TriggerEvent{Type: "change-abandoned", Project: c.Project, Branch: c.Branch, Change: &a, Patchset: c.Patchset, Account: c.Owner}
}

// benchShell answers the engine as the scheduler would, at once: merges
// succeed and builds start running.
type benchShell struct {
	w     *benchWorld
	s     *State
	queue []Event
}

func (sh *benchShell) apply(ev Event) {
	sh.queue = append(sh.queue, ev)
	for len(sh.queue) > 0 {
		ev := sh.queue[0]
		sh.queue = sh.queue[1:]
		ev.Time = sh.w.tick()
		for _, a := range sh.w.e.Apply(sh.s, ev) {
			switch a.Kind {
			case ActPrepare:
				var commits []ProjectCommit
				seen := map[string]bool{}
				for _, c := range a.Changes {
					if !seen[c.Project] {
						seen[c.Project] = true
						commits = append(commits, ProjectCommit{Project: c.Project, Branch: c.Branch, Commit: "spec-" + a.BuildSet})
					}
				}
				sh.queue = append(sh.queue, Event{Merge: &MergeResult{BuildSet: a.BuildSet, Commits: commits}})
			case ActBuild:
				sh.queue = append(sh.queue, Event{Build: runningResult(a.BuildSet, ev.Time)})
			}
		}
	}
}

func runningResult(bs string, started time.Time) *BuildResult {
	return &BuildResult{BuildSet: bs, Phase: PhaseRunning, URL: "https://argo.example.org/workflows/ci/" + bs, StartedAt: started,
		Nodes: []NodeResult{{Name: "lint", Phase: PhaseSucceeded}, {Name: "unit", Phase: PhaseRunning}, {Name: "integration", Phase: PhasePending}}}
}

// benchEvent is one kind of event to measure. Stable events leave the state
// as they found it (pairs restore it), so they repeat on one copy of the
// state; the others run on a fresh copy of their queue each iteration.
type benchEvent struct {
	name   string
	scale  bool // also run at the other sizes
	stable bool
	// target is the pipeline and queue an unstable event changes; each
	// iteration gets a fresh copy of that queue.
	target func(w *benchWorld) (pipeline, queue string)
	// events returns the events of one iteration on state s.
	events func(w *benchWorld, s *State) []Event
}

var benchEvents = []benchEvent{
	{
		name: "build-running-middle-of-gate", scale: true, stable: true,
		events: func(w *benchWorld, s *State) []Event {
			it := benchGateItem(s, 0, w.size.perQueue/2)
			r := runningResult(it.BuildSet.ID, it.BuildSet.Build.StartedAt)
			r.Nodes[1].Message = "step 3 of 7"
			return []Event{{Build: r}}
		},
	},
	{
		name: "build-succeeded-middle-of-gate", scale: true, target: benchGateQueue0,
		events: func(w *benchWorld, s *State) []Event {
			it := benchGateItem(s, 0, w.size.perQueue/2)
			return []Event{{Build: &BuildResult{BuildSet: it.BuildSet.ID, Phase: PhaseSucceeded}}}
		},
	},
	{
		name: "comment-no-trigger", scale: true, stable: true,
		events: func(w *benchWorld, s *State) []Event {
			it := benchGateItem(s, 0, w.size.perQueue/2)
			c := cloneChange(&it.Change)
			two := 2
			return []Event{{Trigger: &TriggerEvent{Type: "comment-added", Project: c.Project, Branch: c.Branch, Change: &c,
				Patchset: c.Patchset, Account: "carol", Comment: "Patch Set 1:\n\nThanks, looks good.",
				Approvals: []EventApproval{{Label: "Code-Review", Value: 2, OldValue: &two}}}}}
		},
	},
	{
		name: "comment-unqueued-change", stable: true,
		events: func(w *benchWorld, s *State) []Event {
			c := w.checkChange(len(w.names))
			return []Event{{Trigger: &TriggerEvent{Type: "comment-added", Project: c.Project, Branch: c.Branch, Change: c,
				Patchset: c.Patchset, Account: "carol", Comment: "Patch Set 1:\n\nWhy not use a map here?"}}}
		},
	},
	{
		name: "approve-new-gate-item+abandon", scale: true, stable: true,
		events: func(w *benchWorld, s *State) []Event {
			c := w.gateChange(0, 0)
			return []Event{{Trigger: w.approveEvent(c)}, {Trigger: w.abandonEvent(c)}}
		},
	},
	{
		name: "check-upload+abandon", scale: true, stable: true,
		events: func(w *benchWorld, s *State) []Event {
			c := w.checkChange(7)
			return []Event{{Trigger: w.uploadEvent(c)}, {Trigger: w.abandonEvent(c)}}
		},
	},
	{
		name: "check-build-succeeded", target: benchCheckMiddle,
		events: func(w *benchWorld, s *State) []Event {
			_, q := benchCheckMiddle(w)
			it := s.Pipeline("check").queue(q).Items[0]
			return []Event{{Build: &BuildResult{BuildSet: it.BuildSet.ID, Phase: PhaseSucceeded}}}
		},
	},
	{
		name: "failure-middle-reset", scale: true, target: benchGateQueue0,
		events: func(w *benchWorld, s *State) []Event {
			it := benchGateItem(s, 0, w.size.perQueue/2)
			return []Event{{Build: &BuildResult{BuildSet: it.BuildSet.ID, Phase: PhaseFailed, Message: "child 'unit' failed"}}}
		},
	},
	{
		name: "failure-at-head-reset", scale: true, target: benchGateQueue0,
		events: func(w *benchWorld, s *State) []Event {
			it := benchGateItem(s, 0, 0)
			return []Event{{Build: &BuildResult{BuildSet: it.BuildSet.ID, Phase: PhaseFailed, Message: "child 'unit' failed"}}}
		},
	},
}

func benchGateQueue0(*benchWorld) (string, string) { return "gate", "shared-0@master" }

func benchCheckMiddle(w *benchWorld) (string, string) {
	qs := w.state.Pipeline("check").Queues
	return "check", qs[len(qs)/2].Name
}

// benchGateItem is item i of the gate queue of shared queue q.
func benchGateItem(s *State, q, i int) *Item {
	return s.Pipeline("gate").queue(fmt.Sprintf("shared-%d@master", q)).Items[i]
}

func (ev benchEvent) run(b *testing.B, w *benchWorld) {
	b.ReportAllocs()
	events, actions := 0, 0
	if ev.stable {
		s := benchClone(w.state)
		before := benchShape(s)
		evs := ev.events(w, s) // Apply never changes its event
		for b.Loop() {
			for _, e := range evs {
				e.Time = w.tick()
				actions += len(w.e.Apply(s, e))
				events++
			}
		}
		if after := benchShape(s); after != before {
			b.Fatalf("the state changed shape: %s before, %s after", before, after)
		}
	} else {
		pipeline, queue := ev.target(w)
		for b.Loop() {
			b.StopTimer()
			s := benchCloneQueue(w.state, pipeline, queue)
			evs := ev.events(w, s)
			for i := range evs {
				evs[i].Time = w.tick()
			}
			b.StartTimer()
			for _, e := range evs {
				actions += len(w.e.Apply(s, e))
				events++
			}
		}
		b.StopTimer()
		w.checkUnchanged(b)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(actions)/float64(events), "actions/event")
}

// benchShape summarises the state's size: items and active items per
// pipeline.
func benchShape(s *State) string {
	out := ""
	for _, p := range s.Pipelines {
		n, active := 0, 0
		for _, it := range p.Items() {
			n++
			if it.Active {
				active++
			}
		}
		out += fmt.Sprintf("%s:%d queues/%d items/%d active ", p.Name, len(p.Queues), n, active)
	}
	return out
}

// benchCloneQueue copies the state so that Apply may change one queue of
// one pipeline: that queue is copied deeply, the pipeline gets a fresh index,
// everything else is shared with s.
func benchCloneQueue(s *State, pipeline, queue string) *State {
	c := *s
	c.Pipelines = append([]*PipelineState(nil), s.Pipelines...)
	for i, p := range s.Pipelines {
		if p.Name != pipeline {
			continue
		}
		cp := &PipelineState{Name: p.Name, Queues: append([]*Queue(nil), p.Queues...)}
		for j, q := range p.Queues {
			if q.Name == queue {
				cp.Queues[j] = benchCloneItems(q)
			}
		}
		cp.index()
		c.Pipelines[i] = cp
	}
	return &c
}

// benchCloneItems copies a queue and its items deeply.
func benchCloneItems(q *Queue) *Queue {
	cq := &Queue{Name: q.Name, Window: q.Window, Items: make([]*Item, len(q.Items))}
	for k, it := range q.Items {
		ci := *it
		ci.Change = cloneChange(&it.Change)
		ci.Failing = append([]string(nil), it.Failing...)
		if bs := it.BuildSet; bs != nil {
			cb := *bs
			cb.Changes = append([]Spec(nil), bs.Changes...)
			cb.Merged = append([]ChangeKey(nil), bs.Merged...)
			cb.Commits = append([]ProjectCommit(nil), bs.Commits...)
			if bs.Conflict != nil {
				cc := *bs.Conflict
				cc.Files = append([]string(nil), bs.Conflict.Files...)
				cb.Conflict = &cc
			}
			if bs.Build != nil {
				bd := *bs.Build
				bd.Nodes = append([]NodeResult(nil), bs.Build.Nodes...)
				cb.Build = &bd
			}
			ci.BuildSet = &cb
		}
		cq.Items[k] = &ci
	}
	return cq
}

// checkUnchanged verifies that the world's state survived the benchmarks
// that shared parts of it.
func (w *benchWorld) checkUnchanged(b *testing.B) {
	b.Helper()
	data, err := w.state.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	if string(data) != string(w.saved) {
		b.Fatal("a benchmark changed the shared state")
	}
	for _, p := range w.state.Pipelines {
		if msg := p.checkIndex(); msg != "" {
			b.Fatalf("a benchmark changed the index of pipeline %s: %s", p.Name, msg)
		}
	}
}

// benchClone is a deep copy of a state, much cheaper than State.Clone's
// trip through JSON; newBenchWorld checks it against the JSON form. The
// copy's indexes are built, so that Apply does not pay for them.
func benchClone(s *State) *State {
	c := *s
	c.Pipelines = make([]*PipelineState, len(s.Pipelines))
	for i, p := range s.Pipelines {
		cp := &PipelineState{Name: p.Name, Queues: make([]*Queue, len(p.Queues))}
		for j, q := range p.Queues {
			cp.Queues[j] = benchCloneItems(q)
		}
		cp.index()
		c.Pipelines[i] = cp
	}
	return &c
}
