package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// Randomised property tests: rapid drives the core through random
// sequences of approvals, uploads, new patchsets, abandons, merges outside,
// build results in any order, merge conflicts and errors, submit refusals
// and promotions, and checks invariants after every event.

// world is the random driver: a harness whose merges and submits are held
// so that rapid decides when and how they are answered.
type world struct {
	h        *harness
	submits  []Action
	prepared map[string]int // buildset -> len(mergeLog) when its prepare was emitted
	builtOn  map[string][]Spec
	silent   map[ChangeKey]bool // changes that may leave a queue without a report
	names    []string
}

var projects = []string{"org/a", "org/b", "org/c"}

func newWorld(t *rapid.T) *world {
	w := &world{prepared: map[string]int{}, builtOn: map[string][]Spec{}, silent: map[ChangeKey]bool{}}
	window := rapid.IntRange(1, 4).Draw(t, "window")
	failFast := rapid.Bool().Draw(t, "failFast")
	w.h = newHarness(t, func(c *Config) {
		c.Pipelines[1].Window = WindowConfig{Initial: window, Floor: 1, Ceiling: 6}
		c.Pipelines[1].FailFast = failFast
	})
	w.h.holdMerges = true
	w.h.mergedEvents = rapid.Bool().Draw(t, "mergedEvents")
	w.h.handleSubmit = func(a Action) { w.submits = append(w.submits, a) }
	prev := w.h.afterApply
	w.h.afterApply = func(ev Event, before []byte, acts []Action) {
		if prev != nil {
			prev(ev, before, acts)
		}
		for _, a := range acts {
			switch a.Kind {
			case ActPrepare:
				w.prepared[a.BuildSet] = len(w.h.mergeLog)
			case ActBuild:
				w.builtOn[a.BuildSet] = a.Changes
			}
		}
	}
	return w
}

func (w *world) open(t *rapid.T, label string) (string, bool) {
	var open []string
	for _, n := range w.names {
		if w.h.get(n).Status == StatusNew {
			open = append(open, n)
		}
	}
	if len(open) == 0 {
		return "", false
	}
	return rapid.SampledFrom(open).Draw(t, label), true
}

// step performs one random action.
func (w *world) step(t *rapid.T) {
	h := w.h
	switch rapid.IntRange(0, 12).Draw(t, "op") {
	case 0, 1: // a new change, maybe on top of another
		if len(w.names) >= 8 {
			return
		}
		name := fmt.Sprintf("C%d", len(w.names)+1)
		project := rapid.SampledFrom(projects).Draw(t, "project")
		h.change(name, project)
		if len(w.names) > 0 && rapid.Bool().Draw(t, "dependent") {
			dep := rapid.SampledFrom(w.names).Draw(t, "dep")
			h.dependsOn(name, dep, rapid.Bool().Draw(t, "parent") && h.get(dep).Project == project)
		}
		w.names = append(w.names, name)
		h.upload(name)
	case 2, 3:
		if n, ok := w.open(t, "approve"); ok {
			h.approve(n)
		}
	case 4:
		if n, ok := w.open(t, "patchset"); ok {
			w.silent[h.key(n)] = true
			h.newPatchset(n)
		}
	case 5:
		if n, ok := w.open(t, "event"); ok {
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0:
				w.silent[h.key(n)] = true
				h.abandon(n)
			case 1:
				w.silent[h.key(n)] = true
				h.mergeOutside(n)
			case 2:
				w.silent[h.key(n)] = true
				h.vote(n, "Code-Review", -2)
			default:
				h.recheck(n)
			}
		}
	case 6, 7, 8: // a build result
		var running []*buildRec
		for _, b := range h.builds {
			if !b.finished {
				running = append(running, b)
			}
		}
		if len(running) == 0 {
			return
		}
		b := rapid.SampledFrom(running).Draw(t, "build")
		switch rapid.IntRange(0, 4).Draw(t, "phase") {
		case 0:
			h.apply(Event{Build: &BuildResult{BuildSet: b.act.BuildSet, Phase: PhaseRunning,
				Nodes: []NodeResult{{Name: "unit", Phase: PhaseFailed}}}})
		case 1:
			b.finished = true
			h.apply(Event{Build: &BuildResult{BuildSet: b.act.BuildSet, Phase: PhaseFailed}})
		default:
			b.finished = true
			h.apply(Event{Build: &BuildResult{BuildSet: b.act.BuildSet, Phase: PhaseSucceeded}})
		}
	case 9, 10: // a merge result
		if len(h.heldPrepares) == 0 {
			return
		}
		i := rapid.IntRange(0, len(h.heldPrepares)-1).Draw(t, "prepare")
		a := h.heldPrepares[i]
		h.heldPrepares = append(h.heldPrepares[:i:i], h.heldPrepares[i+1:]...)
		res := h.mergeFor(a)
		switch rapid.IntRange(0, 5).Draw(t, "merge") {
		case 0:
			res = &MergeResult{BuildSet: a.BuildSet, Conflict: &Conflict{Change: a.Change.Key()}}
		case 1:
			res = &MergeResult{BuildSet: a.BuildSet, Error: "boom"}
		}
		h.apply(Event{Merge: res})
	case 11: // a submit answer
		if len(w.submits) == 0 {
			return
		}
		i := rapid.IntRange(0, len(w.submits)-1).Draw(t, "submit")
		a := w.submits[i]
		w.submits = append(w.submits[:i:i], w.submits[i+1:]...)
		status := rapid.SampledFrom([]ReportStatus{ReportOK, ReportOK, ReportRefused, ReportAlreadyMerged}).Draw(t, "status")
		if status == ReportRefused {
			h.refuseSubmit[a.Change.Key()] = "rejected by a submit rule"
		}
		h.answerSubmit(a, status)
		h.apply(Event{Tick: &Tick{}})
	case 12:
		p := h.s.Pipeline("gate")
		if p == nil {
			return
		}
		items := p.Items()
		if len(items) == 0 {
			return
		}
		it := rapid.SampledFrom(items).Draw(t, "promote")
		h.admin(AdminEvent{Op: AdminPromote, Pipeline: "gate", Changes: []ChangeKey{it.Change.Key()}})
	}
}

// drain answers everything with success until nothing is pending.
func (w *world) drain(t *rapid.T) {
	h := w.h
	for i := 0; i < 1000; i++ {
		switch {
		case len(h.heldPrepares) > 0:
			a := h.heldPrepares[0]
			h.heldPrepares = h.heldPrepares[1:]
			h.apply(Event{Merge: h.mergeFor(a)})
		case len(w.submits) > 0:
			a := w.submits[0]
			w.submits = w.submits[1:]
			delete(h.refuseSubmit, a.Change.Key())
			h.answerSubmit(a, ReportOK)
			h.apply(Event{Tick: &Tick{}})
		default:
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
			next.finished = true
			h.apply(Event{Build: &BuildResult{BuildSet: next.act.BuildSet, Phase: PhaseSucceeded}})
		}
	}
	t.Fatalf("the world did not drain")
}

func run(t *rapid.T, w *world) {
	steps := rapid.IntRange(1, 60).Draw(t, "steps")
	for i := 0; i < steps; i++ {
		w.step(t)
	}
	w.drain(t)
}

func TestPropertySubmitOnlyAfterBuildOfExactlyWhatMergesAhead(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		h := w.h
		h.handleSubmit = func(a Action) {
			on, ok := w.builtOn[a.BuildSet]
			if !ok {
				t.Fatalf("submit of %s without a build of buildset %s", a.Change, a.BuildSet)
			}
			if last := on[len(on)-1]; last != a.Change {
				t.Fatalf("submit of %s after a build whose own change is %s", a.Change, last)
			}
			ahead := map[ChangeKey]bool{}
			for _, s := range on[:len(on)-1] {
				ahead[s.Key()] = true
				if c := h.changes[s.Key()]; c.Status != StatusMerged {
					t.Fatalf("submit of %s tested on top of %s, which has not merged", a.Change, s)
				}
			}
			for _, m := range h.mergeLog[w.prepared[a.BuildSet]:] {
				if m.queue == a.Queue && !ahead[m.key] {
					t.Fatalf("submit of %s: %s merged in queue %s after its state was prepared but was not tested with it (tested %v)", a.Change, m.key, a.Queue, on)
				}
			}
			w.submits = append(w.submits, a)
		}
		run(t, w)
	})
}

func TestPropertyEveryItemLeavesOnceWithOneFinalReport(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		h := w.h
		seen := map[string]*Item{}
		prev := h.afterApply
		h.afterApply = func(ev Event, before []byte, acts []Action) {
			prev(ev, before, acts)
			for _, p := range h.s.Pipelines {
				for _, it := range p.Items() {
					seen[it.ID] = it
				}
			}
		}
		run(t, w)
		outcomes := map[string][]string{}
		for _, a := range h.reports {
			if a.Report.Outcome == OutcomeStart || a.Report.Outcome == OutcomeDequeued || a.Item == "" {
				continue
			}
			o := string(a.Report.Outcome)
			if a.Report.Submit {
				o += "+submit"
			}
			outcomes[a.Item] = append(outcomes[a.Item], o)
		}
		for _, p := range h.s.Pipelines {
			if len(p.Items()) > 0 {
				t.Fatalf("pipeline %s still holds items after draining: %v", p.Name, h.queueItems(p.Name))
			}
		}
		for id, it := range seen {
			got := fmt.Sprint(outcomes[id])
			if !it.Live {
				if len(outcomes[id]) > 0 {
					t.Fatalf("non-live item %s was reported: %s", id, got)
				}
				continue
			}
			switch got {
			case "[success]", "[failure]", "[merge-conflict]", "[config-error]", "[success+submit]", "[success+submit merge-conflict]":
			case "[]":
				// Silent exits: the change was abandoned, re-uploaded,
				// lost its approval, or merged (also through the gate while
				// its check item still ran).
				if k := it.Change.Key(); !w.silent[k] && !it.Change.IsRef() && h.changes[k].Status != StatusMerged {
					t.Fatalf("item %s (%s) left without a report", id, it.Change.String())
				}
			default:
				t.Fatalf("item %s (%s) has reports %s", id, it.Change.String(), got)
			}
		}
	})
}

func TestPropertyOneLiveBuildPerItemAndEverySupersededBuildCancelled(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		h := w.h
		prev := h.afterApply
		h.afterApply = func(ev Event, before []byte, acts []Action) {
			prev(ev, before, acts)
			cancelled := map[string]bool{}
			for _, a := range h.actions {
				if a.Kind == ActCancel {
					cancelled[a.BuildSet] = true
				}
			}
			for _, a := range acts {
				if a.Kind == ActCancel {
					cancelled[a.BuildSet] = true
				}
			}
			perItem := map[string]string{}
			for _, b := range h.builds {
				if b.finished || cancelled[b.act.BuildSet] {
					continue
				}
				if other, dup := perItem[b.act.Item]; dup {
					t.Fatalf("item %s has two live builds: %s and %s", b.act.Item, other, b.act.BuildSet)
				}
				perItem[b.act.Item] = b.act.BuildSet
				_, it := (&tx{s: h.s}).findBuildSet(b.act.BuildSet)
				if it == nil {
					t.Fatalf("build %s runs but its buildset is no item's, and it was never cancelled", b.act.BuildSet)
				}
			}
		}
		run(t, w)
	})
}

func TestPropertyWindowBoundsAndBuildsOnlyInsideWindow(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		h := w.h
		prev := h.afterApply
		h.afterApply = func(ev Event, before []byte, acts []Action) {
			prev(ev, before, acts)
			pc := h.e.cfg.Pipeline("gate")
			for _, q := range h.s.Pipeline("gate").Queues {
				if q.Window < pc.Window.Floor || q.Window > pc.Window.Ceiling {
					t.Fatalf("queue %s window %d outside [%d, %d]", q.Name, q.Window, pc.Window.Floor, pc.Window.Ceiling)
				}
				active := 0
				for _, it := range q.Items {
					if it.Active {
						active++
					}
				}
				if active > q.Window {
					t.Fatalf("queue %s: %d active items, window %d", q.Name, active, q.Window)
				}
			}
			for _, a := range acts {
				if a.Pipeline != "gate" || (a.Kind != ActBuild && a.Kind != ActPrepare) {
					continue
				}
				p := h.s.Pipeline("gate")
				it := p.item(a.Item)
				q := p.queue(a.Queue)
				if it == nil || q == nil {
					continue // left again within the same event
				}
				for i, o := range q.Items {
					if o == it && i >= q.Window && it.BuildSet.ID == a.BuildSet && !it.BuildSet.Build.Phase.Terminal() {
						// the window may have shrunk after the action within the same event; it must not have
						// been emitted outside the window of the state before.
						var old State
						if err := json.Unmarshal(before, &old); err != nil {
							t.Fatal(err)
						}
						if oq := old.Pipeline("gate").queue(a.Queue); oq != nil && i >= oq.Window {
							t.Fatalf("%s for item %s at position %d, window %d", a.Kind, a.Item, i, oq.Window)
						}
					}
				}
			}
		}
		run(t, w)
	})
}

func TestPropertyApplyIsDeterministicAndStateRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		h := w.h
		prev := h.afterApply
		h.afterApply = func(ev Event, before []byte, acts []Action) {
			prev(ev, before, acts)
			restored, err := UnmarshalState(before)
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			again, err := restored.Marshal()
			if err != nil || !bytes.Equal(again, before) {
				t.Fatalf("state does not round-trip:\n%s\n%s", before, again)
			}
			acts2 := h.e.Apply(restored, ev)
			a1, _ := json.Marshal(acts)
			a2, _ := json.Marshal(acts2)
			if !bytes.Equal(a1, a2) {
				t.Fatalf("same state and event gave other actions:\n%s\n%s", a1, a2)
			}
			s1, _ := h.s.Marshal()
			s2, _ := restored.Marshal()
			if !bytes.Equal(s1, s2) {
				t.Fatalf("same state and event gave another state")
			}
		}
		run(t, w)
	})
}
