package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Engine applies events to states under one configuration.
type Engine struct {
	cfg *Config
}

// NewEngine returns an engine for a configuration that compiled without
// errors.
func NewEngine(cfg *Config) (*Engine, error) {
	if cfg == nil || !cfg.compiled {
		return nil, errors.New("pipeline: configuration was not compiled, or has errors")
	}
	return &Engine{cfg: cfg}, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() *Config { return e.cfg }

// tx is the work of one Apply.
type tx struct {
	e       *Engine
	s       *State
	now     time.Time
	actions []Action
	dirty   []dirtyQueue
	isDirty map[*Queue]bool
	// left says why a change left a queue during this Apply, for the
	// reports of the changes that needed it.
	left map[ChangeKey]string
}

type dirtyQueue struct {
	p *PipelineState
	q *Queue
}

// maxPasses bounds the fixpoint loop over one queue. Every pass that changes
// something removes an item, moves an item behind another or advances a
// buildset, so a queue settles in a few passes; the bound only turns a bug
// into a notice instead of a hang.
const maxPasses = 64

// Apply is the transition of the core: it changes s to the state after ev
// and returns the actions the shell must carry out, in order. It touches
// nothing but s; it is deterministic: the same state and event give the same
// state and actions, also after s went through JSON and back.
func (e *Engine) Apply(s *State, ev Event) []Action {
	t := &tx{e: e, s: s, now: ev.Time.UTC(), isDirty: map[*Queue]bool{}, left: map[ChangeKey]string{}}
	if s.Version == 0 {
		s.Version = StateVersion
	}
	if t.now.After(s.Now) {
		s.Now = t.now
	} else {
		t.now = s.Now
	}
	t.ensurePipelines()
	switch {
	case ev.Trigger != nil:
		t.trigger(cloneTrigger(ev.Trigger))
	case ev.Merge != nil:
		t.mergeResult(ev.Merge)
	case ev.Build != nil:
		t.buildResult(ev.Build)
	case ev.Report != nil:
		t.reportResult(ev.Report)
	case ev.Admin != nil:
		t.admin(ev.Admin)
	case ev.Tick != nil:
	}
	t.settle()
	return t.actions
}

func (t *tx) ensurePipelines() {
	for i := range t.e.cfg.Pipelines {
		name := t.e.cfg.Pipelines[i].Name
		if t.s.Pipeline(name) == nil {
			t.s.Pipelines = append(t.s.Pipelines, &PipelineState{Name: name})
		}
	}
}

// pipelines yields each configured pipeline with its state, in
// configuration order.
func (t *tx) pipelines(fn func(*PipelineConfig, *PipelineState)) {
	for i := range t.e.cfg.Pipelines {
		pc := &t.e.cfg.Pipelines[i]
		fn(pc, t.s.Pipeline(pc.Name))
	}
}

func (t *tx) markDirty(p *PipelineState, q *Queue) {
	if q == nil || t.isDirty[q] {
		return
	}
	t.isDirty[q] = true
	t.dirty = append(t.dirty, dirtyQueue{p, q})
}

// settle processes every queue the event touched until nothing changes.
func (t *tx) settle() {
	for i := 0; i < len(t.dirty); i++ {
		d := t.dirty[i]
		pc := t.e.cfg.Pipeline(d.p.Name)
		if pc == nil {
			continue
		}
		settled := false
		for pass := 0; pass < maxPasses; pass++ {
			if !t.processQueue(pc, d.p, d.q) {
				settled = true
				break
			}
		}
		if !settled {
			t.notice(pc, "", fmt.Sprintf("queue %s did not settle in %d passes; will retry on the next event", d.q.Name, maxPasses))
		}
		t.isDirty[d.q] = false
		if len(d.q.Items) == 0 && t.disposable(pc, d.q) {
			d.p.removeQueue(d.q)
		}
	}
	t.dirty = nil
}

// disposable reports whether an empty queue can go: a dependent queue is
// kept while its window differs from the initial one, so that a rate limit
// survives the queue draining.
func (t *tx) disposable(pc *PipelineConfig, q *Queue) bool {
	return pc.Manager != Dependent || q.Window == pc.Window.Initial
}

func (t *tx) nextSeq() int64 {
	t.s.Seq++
	return t.s.Seq
}

func (t *tx) emit(a Action) { t.actions = append(t.actions, a) }

func (t *tx) notice(pc *PipelineConfig, subject, text string) {
	id := fmt.Sprintf("notice/%d", t.nextSeq())
	if subject != "" {
		text = subject + ": " + text
	}
	t.emit(Action{ID: id, Kind: ActNotice, Pipeline: pc.Name, Reason: text})
}

// mergeResult records the merger's answer for a buildset.
func (t *tx) mergeResult(r *MergeResult) {
	p, it := t.findBuildSet(r.BuildSet)
	if it == nil {
		return // an old buildset: the item was reset or left
	}
	bs := it.BuildSet
	if bs.Merge != MergePending {
		return
	}
	switch {
	case r.Conflict != nil:
		bs.Merge = MergeConflict
		c := *r.Conflict
		bs.Conflict = &c
	case r.Error != "":
		bs.MergeError = r.Error
		if bs.MergeAttempts >= maxMergeAttempts {
			bs.Merge = MergeError
		} else {
			bs.Merge = MergeNone // ask again on this pass
		}
	default:
		bs.Merge = MergeReady
		bs.Commits = append([]ProjectCommit(nil), r.Commits...)
	}
	t.markDirty(p, p.queue(it.Queue))
}

// maxMergeAttempts is how often a merger error is retried before the item is
// reported as failed: errors are infrastructure trouble, not the change's.
const maxMergeAttempts = 3

// buildResult records news about a workflow.
func (t *tx) buildResult(r *BuildResult) {
	p, it := t.findBuildSet(r.BuildSet)
	if it == nil || it.BuildSet.Build == nil {
		return
	}
	bs := it.BuildSet
	b := bs.Build
	if b.Phase.Terminal() {
		return
	}
	if r.ConfigError != "" {
		bs.ConfigError = r.ConfigError
		b.Phase = PhaseError
		b.Message = r.ConfigError
		b.FinishedAt = t.now
		t.markDirty(p, p.queue(it.Queue))
		return
	}
	if r.Phase != "" {
		b.Phase = r.Phase
	}
	b.Message = r.Message
	if r.URL != "" {
		b.URL = r.URL
	}
	if !r.StartedAt.IsZero() {
		b.StartedAt = r.StartedAt.UTC()
	}
	if !r.FinishedAt.IsZero() {
		b.FinishedAt = r.FinishedAt.UTC()
	} else if b.Phase.Terminal() {
		b.FinishedAt = t.now
	}
	b.Nodes = append([]NodeResult(nil), r.Nodes...)
	if b.Phase == PhaseRunning || b.Phase == PhasePending {
		for _, n := range r.Nodes {
			if n.Phase == PhaseFailed || n.Phase == PhaseError {
				b.FailedEarly = true
			}
		}
	}
	t.markDirty(p, p.queue(it.Queue))
}

func (t *tx) findBuildSet(id string) (*PipelineState, *Item) {
	for _, p := range t.s.Pipelines {
		if it := p.index().byBuildSt[id]; it != nil {
			return p, it
		}
	}
	return nil, nil
}

// reportResult finishes a submit: merged (or found merged) means success,
// refused means the change leaves with a merge failure and everything behind
// it is tested again without it.
func (t *tx) reportResult(r *ReportResult) {
	p, it := t.findBuildSet(r.BuildSet)
	if it == nil || it.Submitting == "" || it.Submitting != r.ActionID {
		return
	}
	pc := t.e.cfg.Pipeline(p.Name)
	q := p.queue(it.Queue)
	it.Submitting = ""
	switch r.Status {
	case ReportOK, ReportAlreadyMerged:
		t.growWindow(pc, q)
		it.Change.Status = StatusMerged
		t.changeMerged(p, q, it.Change.Key())
	default:
		msg := "Seakeeper could not submit this change."
		if r.Message != "" {
			msg += "\n\nGerrit said: " + r.Message
		}
		t.shrinkWindow(pc, q)
		t.report(pc, it, OutcomeMergeConflict, msg, false)
		t.dequeue(p, q, it, "Gerrit refused to submit it")
	}
	t.markDirty(p, q)
}

// changeMerged records in queue q that change k merged: its items leave
// without report and the buildsets that include it stay valid.
func (t *tx) changeMerged(p *PipelineState, q *Queue, k ChangeKey) {
	for _, it := range q.Items {
		for i := range it.Change.Needs {
			if it.Change.Needs[i].Change == k {
				it.Change.Needs[i].Merged = true
			}
		}
		if bs := it.BuildSet; bs != nil && containsSpec(bs.Changes, k) && !containsKey(bs.Merged, k) {
			bs.Merged = append(bs.Merged, k)
		}
	}
	for _, it := range append([]*Item(nil), q.Items...) {
		if !it.Change.IsRef() && it.Change.Key() == k {
			if it.Submitting != "" {
				// Gerrit's change-merged event overtook the answer to
				// our own submit: it is our merge all the same.
				t.growWindow(t.e.cfg.Pipeline(p.Name), q)
			}
			t.dequeue(p, q, it, "")
		}
	}
	t.markDirty(p, q)
}

func containsSpec(list []Spec, k ChangeKey) bool {
	for _, s := range list {
		if s.Number != 0 && s.Key() == k {
			return true
		}
	}
	return false
}

func containsKey(list []ChangeKey, k ChangeKey) bool {
	for _, x := range list {
		if x == k {
			return true
		}
	}
	return false
}

// dequeue removes an item from its queue, cancelling its build. Items that
// were tested on top of it now stand on what it stood on; the next pass
// resets them if their speculative list no longer holds.
func (t *tx) dequeue(p *PipelineState, q *Queue, it *Item, cancelReason string) {
	if it.gone {
		return
	}
	if cancelReason != "" && !it.Change.IsRef() {
		t.left[it.Change.Key()] = cancelReason
	}
	if cancelReason == "" {
		cancelReason = "item left the queue"
	}
	t.cancelBuild(p, it, cancelReason)
	for i, o := range q.Items {
		if o == it {
			q.Items = append(q.Items[:i:i], q.Items[i+1:]...)
			break
		}
	}
	for _, o := range q.Items {
		if o.Ahead == it.ID {
			o.Ahead = it.Ahead
		}
	}
	it.gone = true
	p.index().remove(it)
	t.markDirty(p, q)
}

// cancelBuild emits a cancel for a buildset whose workflow may be running.
func (t *tx) cancelBuild(p *PipelineState, it *Item, reason string) {
	bs := it.BuildSet
	if bs == nil || bs.Build == nil || bs.Build.Phase.Terminal() || bs.Build.Cancelled {
		return
	}
	bs.Build.Cancelled = true
	t.emit(Action{ID: "cancel/" + bs.ID, Kind: ActCancel, Pipeline: p.Name, Queue: it.Queue, Item: it.ID,
		BuildSet: bs.ID, Change: specOf(&it.Change), Reason: reason})
}

// sortedKeys returns map keys in order, for deterministic output.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cloneTrigger copies the parts of an event the core may annotate, so the
// caller's event is never changed.
func cloneTrigger(ev *TriggerEvent) *TriggerEvent {
	out := *ev
	if ev.Change != nil {
		c := cloneChange(ev.Change)
		out.Change = &c
	}
	out.Related = make([]Change, len(ev.Related))
	for i := range ev.Related {
		out.Related[i] = cloneChange(&ev.Related[i])
	}
	return &out
}
