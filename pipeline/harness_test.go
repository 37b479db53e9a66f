package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The harness is a fake shell around the core, in the spirit of Zuul's test
// harness: merges are answered at once (with conflicts where the test says),
// builds are held until the test releases them, submits succeed unless the
// test makes Gerrit refuse them. Everything the core asked for is recorded
// in the order it asked, so tests assert the exact builds, merges, reports
// and cancellations.

func boolp(b bool) *bool { return &b }

// testConfig has a check (independent), gate (dependent) and post
// (supercedent) pipeline; org/a and org/b share the "integrated" gate queue,
// org/c has a queue of its own.
func testConfig(mod ...func(*Config)) *Config {
	cfg := &Config{
		Queues: []QueueConfig{{Name: "integrated", Projects: []string{"org/a", "org/b"}}},
		Pipelines: []PipelineConfig{
			{
				Name: "check", Manager: Independent,
				Trigger: []TriggerConfig{
					{Event: []string{"patchset-created"}},
					{Event: []string{"comment-added"}, Comment: `(?im)^\s*recheck\s*$`},
				},
				Require: Requirement{Open: boolp(true), CurrentPatchset: boolp(true)},
				Report: ReportersConfig{
					Start:   &Reporter{Message: "Starting check."},
					Success: &Reporter{Labels: map[string]int{"Verified": 1}},
					Failure: &Reporter{Labels: map[string]int{"Verified": -1}},
				},
			},
			{
				Name: "gate", Manager: Dependent, Precedence: "high",
				Trigger: []TriggerConfig{{Event: []string{"comment-added"}, Approval: []ApprovalMatch{{Label: "Code-Review", Value: []int{2}}}}},
				Require: Requirement{Open: boolp(true), CurrentPatchset: boolp(true),
					Approval: []ApprovalMatch{{Label: "Code-Review", Value: []int{2}}}},
				Reject: Requirement{Approval: []ApprovalMatch{{Label: "Code-Review", Value: []int{-2}}}},
				Report: ReportersConfig{
					Start:         &Reporter{Labels: map[string]int{"Verified": 0}},
					Success:       &Reporter{Labels: map[string]int{"Verified": 2}, Submit: true},
					Failure:       &Reporter{Labels: map[string]int{"Verified": -2}},
					MergeConflict: &Reporter{Labels: map[string]int{"Verified": -2}, Message: "Merge failed."},
				},
			},
			{
				Name: "post", Manager: Supercedent,
				Trigger: []TriggerConfig{{Event: []string{"ref-updated"}, Ref: `^refs/heads/.*$`}},
			},
		},
	}
	for _, m := range mod {
		m(cfg)
	}
	return cfg
}

type mergeRec struct {
	queue string
	key   ChangeKey
}

type buildRec struct {
	act      Action
	finished bool
}

// tb is what the harness needs of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
}

type harness struct {
	t   tb
	e   *Engine
	s   *State
	now time.Time

	changes map[ChangeKey]*Change
	names   map[ChangeKey]string
	byName  map[string]ChangeKey
	numbers int

	conflicts     map[ChangeKey]bool   // merges including this change conflict
	mergeErrors   int                  // next prepares answered with an error
	refuseSubmit  map[ChangeKey]string // Gerrit refuses submits of these
	holdMerges    bool                 // leave prepare actions unanswered
	heldPrepares  []Action
	mergedEvents  bool // send change-merged after a successful submit
	checkEachTurn bool
	handleSubmit  func(Action) // when set, submits are left to the test
	// afterApply, when set, sees every event with the state serialised
	// before it and the actions it produced.
	afterApply func(ev Event, before []byte, acts []Action)
	mergeLog   []mergeRec // our submits, in order

	actions []Action // everything, in order
	builds  []*buildRec
	reports []Action
	cancels []string
	merged  []string // submit order, by name
	notices []string
	queue   []Event
}

func newHarness(t tb, mod ...func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(mod...)
	if errs := cfg.Compile(); len(errs) > 0 {
		t.Fatalf("test config: %v", errs)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{
		t: t, e: e, s: NewState(), now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		changes: map[ChangeKey]*Change{}, names: map[ChangeKey]string{}, byName: map[string]ChangeKey{},
		conflicts: map[ChangeKey]bool{}, refuseSubmit: map[ChangeKey]string{},
		mergedEvents: true, checkEachTurn: true,
	}
}

// change creates an open change named name in project.
func (h *harness) change(name, project string) *Change {
	h.numbers++
	k := ChangeKey{project, 1000 + h.numbers}
	c := &Change{Project: project, Branch: "master", Number: k.Number, Patchset: 1,
		Ref: fmt.Sprintf("refs/changes/%02d/%d/1", k.Number%100, k.Number), Commit: fmt.Sprintf("%s-ps1", name),
		ChangeID: fmt.Sprintf("I%040d", k.Number), Subject: "change " + name, Status: StatusNew,
		URL: fmt.Sprintf("https://review.example.org/c/%s/+/%d", project, k.Number)}
	h.changes[k] = c
	h.names[k] = name
	h.byName[name] = k
	return c
}

func (h *harness) get(name string) *Change {
	c := h.changes[h.byName[name]]
	if c == nil {
		h.t.Fatalf("no change %s", name)
	}
	return c
}

// dependsOn makes a need b (git parent when parent is true).
func (h *harness) dependsOn(a, b string, parent bool) {
	ca, cb := h.get(a), h.get(b)
	n := Need{Change: cb.Key()}
	if parent {
		n.Patchset = cb.Patchset
	}
	ca.Needs = append(ca.Needs, n)
	cb.NeededBy = append(cb.NeededBy, ca.Key())
}

// related returns fresh snapshots of every change reachable from c.
func (h *harness) related(c *Change) []Change {
	seen := map[ChangeKey]bool{c.Key(): true}
	var out []Change
	var walk func(x *Change)
	walk = func(x *Change) {
		var next []ChangeKey
		for _, n := range x.Needs {
			next = append(next, n.Change)
		}
		next = append(next, x.NeededBy...)
		for _, k := range next {
			if seen[k] {
				continue
			}
			seen[k] = true
			if y := h.changes[k]; y != nil {
				out = append(out, *y)
				walk(y)
			}
		}
	}
	walk(c)
	return out
}

func (h *harness) trigger(typ string, c *Change, mut func(*TriggerEvent)) {
	snap := *c
	ev := &TriggerEvent{Type: typ, Project: c.Project, Branch: c.Branch, Change: &snap, Patchset: c.Patchset,
		Account: "alice", Related: h.related(c)}
	if mut != nil {
		mut(ev)
	}
	h.apply(Event{Trigger: ev})
}

func (h *harness) upload(name string) {
	h.trigger("patchset-created", h.get(name), nil)
}

func (h *harness) recheck(name string) {
	h.trigger("comment-added", h.get(name), func(ev *TriggerEvent) { ev.Comment = "recheck" })
}

// approve grants Code-Review +2, which triggers the gate.
func (h *harness) approve(name string) {
	c := h.get(name)
	c.Approvals = append(c.Approvals, Approval{Label: "Code-Review", Value: 2, By: "bob"})
	old := 0
	h.trigger("comment-added", c, func(ev *TriggerEvent) {
		ev.Account = "bob"
		ev.Approvals = []EventApproval{{Label: "Code-Review", Value: 2, OldValue: &old}}
	})
}

func (h *harness) vote(name, label string, value int) {
	c := h.get(name)
	c.Approvals = append(c.Approvals, Approval{Label: label, Value: value, By: "carol"})
	h.trigger("comment-added", c, func(ev *TriggerEvent) {
		ev.Account = "carol"
		ev.Approvals = []EventApproval{{Label: label, Value: value}}
	})
}

func (h *harness) newPatchset(name string) {
	c := h.get(name)
	c.Patchset++
	c.Ref = fmt.Sprintf("refs/changes/%02d/%d/%d", c.Number%100, c.Number, c.Patchset)
	c.Commit = fmt.Sprintf("%s-ps%d", name, c.Patchset)
	c.Approvals = nil
	h.trigger("patchset-created", c, nil)
}

func (h *harness) abandon(name string) {
	c := h.get(name)
	c.Status = StatusAbandoned
	h.trigger("change-abandoned", c, nil)
}

func (h *harness) mergeOutside(name string) {
	c := h.get(name)
	c.Status = StatusMerged
	h.trigger("change-merged", c, nil)
}

func (h *harness) refUpdated(project, ref, oldRev, newRev string) {
	h.apply(Event{Trigger: &TriggerEvent{Type: "ref-updated", Project: project, Ref: ref, OldRev: oldRev, NewRev: newRev}})
}

// apply feeds an event and then every event the fake shell produces in
// answer, until nothing is left.
func (h *harness) apply(ev Event) {
	h.t.Helper()
	h.queue = append(h.queue, ev)
	for len(h.queue) > 0 {
		ev := h.queue[0]
		h.queue = h.queue[1:]
		h.now = h.now.Add(time.Second)
		ev.Time = h.now
		var before []byte
		if h.afterApply != nil {
			var err error
			if before, err = h.s.Marshal(); err != nil {
				h.t.Fatalf("marshal: %v", err)
			}
		}
		acts := h.e.Apply(h.s, ev)
		if h.afterApply != nil {
			h.afterApply(ev, before, acts)
		}
		if h.checkEachTurn {
			h.checkInvariants()
		}
		for _, a := range acts {
			h.handle(a)
		}
	}
}

func (h *harness) checkInvariants() {
	h.t.Helper()
	for _, p := range h.s.Pipelines {
		if msg := p.checkIndex(); msg != "" {
			h.t.Fatalf("pipeline %s: %s", p.Name, msg)
		}
	}
	if msg := checkStructure(h.e.cfg, h.s); msg != "" {
		h.t.Fatal(msg)
	}
}

func (h *harness) name(s Spec) string {
	if s.Number == 0 {
		return s.Project + ":" + strings.TrimPrefix(s.Ref, "refs/heads/") + "@" + s.Commit
	}
	if n, ok := h.names[s.Key()]; ok {
		if c := h.changes[s.Key()]; c != nil && c.Patchset > 1 || s.Patchset > 1 {
			return fmt.Sprintf("%s%d", n, s.Patchset)
		}
		return n
	}
	return s.Key().String()
}

// label is "<pipeline> <change>: <speculative list>" of a build or cancel.
func (h *harness) label(a Action) string {
	names := make([]string, len(a.Changes))
	for i, s := range a.Changes {
		names[i] = h.name(s)
	}
	if len(names) == 0 {
		// cancels carry the change only; find the build's list
		for _, b := range h.builds {
			if b.act.BuildSet == a.BuildSet {
				return h.label(b.act)
			}
		}
	}
	return a.Pipeline + " " + h.name(a.Change) + ": " + strings.Join(names, "+")
}

// running returns the labels of unfinished builds, in start order.
func (h *harness) running() []string {
	var out []string
	for _, b := range h.builds {
		if !b.finished {
			out = append(out, h.label(b.act))
		}
	}
	return out
}

// allBuilds returns the labels of every build started.
func (h *harness) allBuilds() []string {
	out := make([]string, len(h.builds))
	for i, b := range h.builds {
		out[i] = h.label(b.act)
	}
	return out
}

// release finishes the oldest running build of the named change in the
// pipeline with the phase.
func (h *harness) release(pipeline, name string, phase Phase) {
	h.t.Helper()
	k := h.byName[name]
	for _, b := range h.builds {
		if !b.finished && b.act.Pipeline == pipeline && b.act.Change.Key() == k {
			b.finished = true
			h.apply(Event{Build: &BuildResult{BuildSet: b.act.BuildSet, Phase: phase, URL: "https://argo.example.org/workflows/ci/" + b.act.BuildSet,
				Message: map[Phase]string{PhaseFailed: "child 'unit' failed"}[phase]}})
			return
		}
	}
	h.t.Fatalf("no running %s build of %s; running: %v", pipeline, name, h.running())
}

// releaseLabel finishes the running build with the given label.
func (h *harness) releaseLabel(label string, phase Phase) {
	h.t.Helper()
	for _, b := range h.builds {
		if !b.finished && h.label(b.act) == label {
			b.finished = true
			h.apply(Event{Build: &BuildResult{BuildSet: b.act.BuildSet, Phase: phase}})
			return
		}
	}
	h.t.Fatalf("no running build %q; running: %v", label, h.running())
}

// releaseAll finishes every running build, oldest first, with success unless
// the change is in fail.
func (h *harness) releaseAll(fail ...string) {
	h.t.Helper()
	for {
		var next *buildRec
		for _, b := range h.builds {
			if !b.finished {
				next = b
				break
			}
		}
		if next == nil {
			return
		}
		phase := PhaseSucceeded
		for _, f := range fail {
			if next.act.Change.Key() == h.byName[f] {
				phase = PhaseFailed
			}
		}
		h.release(next.act.Pipeline, h.names[next.act.Change.Key()], phase)
	}
}

// reportLines renders reports as "<pipeline> <change> <outcome> [labels] [submit]".
func (h *harness) reportLines(pipeline string) []string {
	var out []string
	for _, a := range h.reports {
		if pipeline != "" && a.Pipeline != pipeline {
			continue
		}
		line := fmt.Sprintf("%s %s %s", a.Pipeline, h.name(a.Change), a.Report.Outcome)
		for _, k := range sortedKeys(a.Report.Labels) {
			line += fmt.Sprintf(" %s%+d", k, a.Report.Labels[k])
		}
		if a.Report.Submit {
			line += " submit"
		}
		out = append(out, line)
	}
	return out
}

func (h *harness) queueItems(pipeline string) []string {
	var out []string
	p := h.s.Pipeline(pipeline)
	for _, q := range p.Queues {
		for _, it := range q.Items {
			out = append(out, q.Name+":"+h.name(specOf(&it.Change)))
		}
	}
	return out
}

func (h *harness) window(pipeline, queue string) int {
	q := h.s.Pipeline(pipeline).queue(queue)
	if q == nil {
		return -1
	}
	return q.Window
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// checkStructure verifies invariants that hold after every Apply.
func checkStructure(cfg *Config, s *State) string {
	for _, p := range s.Pipelines {
		pc := cfg.Pipeline(p.Name)
		names := map[string]bool{}
		for _, q := range p.Queues {
			if names[q.Name] {
				return fmt.Sprintf("pipeline %s has queue %s twice", p.Name, q.Name)
			}
			names[q.Name] = true
			if pc.Manager == Dependent && (q.Window < pc.Window.Floor || pc.Window.Ceiling > 0 && q.Window > pc.Window.Ceiling) {
				return fmt.Sprintf("queue %s window %d outside [%d, %d]", q.Name, q.Window, pc.Window.Floor, pc.Window.Ceiling)
			}
			pos := map[string]int{}
			active := 0
			for i, it := range q.Items {
				pos[it.ID] = i
				if _, ok := pos[it.Ahead]; it.Ahead != "" && !ok {
					return fmt.Sprintf("item %s is behind %s, which is not ahead of it in queue %s", it.ID, it.Ahead, q.Name)
				}
				if it.Active {
					active++
				}
			}
			if pc.Manager == Dependent && active > q.Window {
				return fmt.Sprintf("queue %s has %d active items, window %d", q.Name, active, q.Window)
			}
			if pc.Manager == Supercedent && len(q.Items) > 2 {
				return fmt.Sprintf("supercedent queue %s holds %d items", q.Name, len(q.Items))
			}
		}
	}
	return ""
}

func (h *harness) admin(a AdminEvent) { h.apply(Event{Admin: &a}) }

func (h *harness) key(name string) ChangeKey { return h.byName[name] }
