package pipeline

import (
	"fmt"
)

// processQueue is one pass over a queue from head to tail, Zuul's
// nearest-non-failing-item walk: every item is tested on top of the nearest
// item ahead of it that is expected to merge. It reports whether anything
// changed, so the caller repeats it until the queue settles.
func (t *tx) processQueue(pc *PipelineConfig, p *PipelineState, q *Queue) bool {
	changed := false
	var nnfi *Item
	chains := make(map[string]*chain, len(q.Items))
	for _, it := range append([]*Item(nil), q.Items...) {
		if it.gone {
			continue
		}
		c, next := t.processItem(pc, p, q, it, nnfi, chains)
		changed = changed || c
		nnfi = next
	}
	return changed
}

func (t *tx) processItem(pc *PipelineConfig, p *PipelineState, q *Queue, it *Item, nnfi *Item, chains map[string]*chain) (changed bool, next *Item) {
	next = nnfi
	if why := t.unmetNeed(p, it, chains); why != "" {
		if it.Live {
			t.report(pc, it, OutcomeFailure, fmt.Sprintf("This change depends on %s.", why), false)
		}
		t.dequeue(p, q, it, "a needed change left the queue")
		return true, next
	}
	actionable := t.actionable(pc, q, it)
	it.Active = actionable && it.Live
	var failing []string
	if dep := t.failingNeed(p, it); dep != "" {
		failing = append(failing, "it depends on "+dep+", which is failing")
		if bs := it.BuildSet; bs != nil && bs.Build != nil && !bs.Build.Cancelled && !bs.Build.Phase.Terminal() {
			t.cancelBuild(p, it, "a needed change is failing")
			changed = true
		}
		chains[it.ID] = t.chainOf(pc, it, chains)
	} else {
		if pc.Manager == Dependent {
			want := ""
			if nnfi != nil {
				want = nnfi.ID
			}
			if it.Ahead != want {
				it.Ahead = want
				changed = true
			}
		}
		chain := t.chainOf(pc, it, chains)
		chains[it.ID] = chain
		if it.Live {
			if t.ensureBuildSet(p, it, chain) {
				changed = true
			}
			if actionable && t.advance(pc, p, it) {
				changed = true
			}
		}
	}
	failing = append(failing, t.failures(pc, p, it)...)
	it.Failing = failing

	if !it.Live && !hasItemsBehind(q, it) {
		t.dequeue(p, q, it, "")
		return true, next
	}
	if it.Live && it.Submitting == "" && t.atHead(pc, p, q, it) && complete(it) {
		if t.finish(pc, p, q, it) {
			next = it // submitting: still the base of the items behind
		}
		return true, next
	}
	if len(failing) == 0 && it.Live || it.Submitting != "" {
		// A submitting item is about to merge: whatever is behind it must
		// be tested on top of it.
		next = it
	}
	return changed, next
}

// unmetNeed returns which needed change is neither merged nor ahead of the
// item, if one is not.
func (t *tx) unmetNeed(p *PipelineState, it *Item, chains map[string]*chain) string {
	for _, n := range it.Change.Needs {
		if n.Merged {
			continue
		}
		ok := false
		for c := chains[it.Ahead]; c != nil; c = c.prev {
			if s := c.spec; s.Number != 0 && s.Key() == n.Change && (n.Patchset == 0 || n.Patchset == s.Patchset) {
				ok = true
				break
			}
		}
		if !ok {
			if why := t.left[n.Change]; why != "" {
				return fmt.Sprintf("change %s, which left the queue (%s)", n.Change, why)
			}
			return fmt.Sprintf("change %s, which is neither merged nor ahead of it in the queue", n.Change)
		}
	}
	return ""
}

// failingNeed returns a needed change whose item ahead is failing.
func (t *tx) failingNeed(p *PipelineState, it *Item) string {
	for _, n := range it.Change.Needs {
		if n.Merged {
			continue
		}
		for _, o := range p.itemsForKey(n.Change) {
			if o.Queue == it.Queue && o.Live && len(o.Failing) > 0 && !o.gone {
				return "change " + n.Change.String()
			}
		}
	}
	return ""
}

// chain is the speculative change list of an item as a list linked
// backwards through the items it is tested on top of, so that a pass over a
// queue builds every item's list in constant time and space per item.
type chain struct {
	spec Spec
	prev *chain
	n    int
}

// chainOf is the speculative change list of an item: the items it is tested
// on top of, then itself. A supercedent item stands alone.
func (t *tx) chainOf(pc *PipelineConfig, it *Item, chains map[string]*chain) *chain {
	own := specOf(&it.Change)
	if pc.Manager == Supercedent {
		return &chain{spec: own, n: 1}
	}
	ahead := chains[it.Ahead]
	n := 1
	if ahead != nil {
		n += ahead.n
	}
	return &chain{spec: own, prev: ahead, n: n}
}

// specs returns the list, head first.
func (c *chain) specs() []Spec {
	if c == nil {
		return nil
	}
	out := make([]Spec, c.n)
	for x, i := c, c.n-1; x != nil; x, i = x.prev, i-1 {
		out[i] = x.spec
	}
	return out
}

func (t *tx) actionable(pc *PipelineConfig, q *Queue, it *Item) bool {
	switch pc.Manager {
	case Independent:
		return true
	case Supercedent:
		return len(q.Items) > 0 && q.Items[0] == it
	}
	for i, o := range q.Items {
		if i >= q.Window {
			return false
		}
		if o == it {
			return true
		}
	}
	return false
}

func (t *tx) atHead(pc *PipelineConfig, p *PipelineState, q *Queue, it *Item) bool {
	if pc.Manager == Supercedent {
		return q.Items[0] == it
	}
	ahead := p.item(it.Ahead)
	return ahead == nil || !ahead.Live
}

func hasItemsBehind(q *Queue, it *Item) bool {
	for _, o := range q.Items {
		if o.Ahead == it.ID {
			return true
		}
	}
	return false
}

// ensureBuildSet gives the item a buildset for its speculative list,
// replacing (and cancelling) one that no longer matches. Changes that have
// merged since the buildset was made are part of the branch now and do not
// count as a difference.
func (t *tx) ensureBuildSet(p *PipelineState, it *Item, c *chain) bool {
	bs := it.BuildSet
	if bs != nil && bs.Merge == MergeNone && bs.Build == nil {
		// Nothing was asked for this buildset yet: keep it exact.
		if sameChanges(bs.Changes, nil, c) {
			return false
		}
		bs.Changes = c.specs()
		bs.Merged = nil
		return true
	}
	if bs != nil && sameChanges(bs.Changes, bs.Merged, c) && (bs.Build == nil || !bs.Build.Cancelled) {
		return false
	}
	if bs != nil {
		t.cancelBuild(p, it, "the changes ahead of it changed")
	}
	it.Attempts++
	p.setBuildSet(it, &BuildSet{ID: fmt.Sprintf("%s.%d", it.ID, it.Attempts), Changes: c.specs(), CreatedAt: t.now})
	return true
}

// sameChanges reports whether list, less the changes in merged, is the
// chain c.
func sameChanges(list []Spec, merged []ChangeKey, c *chain) bool {
	i := len(list) - 1
	for ; c != nil; c = c.prev {
		for i >= 0 && list[i].Number != 0 && containsKey(merged, list[i].Key()) {
			i--
		}
		if i < 0 || list[i] != c.spec {
			return false
		}
		i--
	}
	for i >= 0 && list[i].Number != 0 && containsKey(merged, list[i].Key()) {
		i--
	}
	return i < 0
}

// advance moves an active item's buildset one step: ask for the merge, then
// start the build.
func (t *tx) advance(pc *PipelineConfig, p *PipelineState, it *Item) bool {
	bs := it.BuildSet
	switch {
	case bs.Merge == MergeNone:
		bs.Merge = MergePending
		bs.MergeAttempts++
		id := "prepare/" + bs.ID
		if bs.MergeAttempts > 1 {
			id = fmt.Sprintf("%s/%d", id, bs.MergeAttempts)
		}
		base := ""
		if ahead := p.item(it.Ahead); ahead != nil && ahead.BuildSet != nil && ahead.Live {
			base = ahead.BuildSet.ID
		}
		t.emit(Action{ID: id, Kind: ActPrepare, Pipeline: p.Name, Queue: it.Queue, Item: it.ID, BuildSet: bs.ID,
			Change: specOf(&it.Change), Changes: append([]Spec(nil), bs.Changes...), Base: base})
		return true
	case bs.Merge == MergeReady && bs.Build == nil:
		bs.Build = &Build{Phase: PhasePending, StartedAt: t.now}
		t.emit(Action{ID: "build/" + bs.ID, Kind: ActBuild, Pipeline: p.Name, Queue: it.Queue, Item: it.ID, BuildSet: bs.ID,
			Change: specOf(&it.Change), Changes: append([]Spec(nil), bs.Changes...),
			Commits: append([]ProjectCommit(nil), bs.Commits...), Priority: pc.Priority()})
		return true
	}
	return false
}

// failures lists why the item's own buildset says it will not merge, and
// applies fail-fast.
func (t *tx) failures(pc *PipelineConfig, p *PipelineState, it *Item) []string {
	bs := it.BuildSet
	if bs == nil {
		return nil
	}
	var out []string
	switch bs.Merge {
	case MergeConflict:
		out = append(out, "it has a merge conflict")
	case MergeError:
		out = append(out, "its speculative state could not be prepared")
	}
	b := bs.Build
	if b == nil || b.Cancelled {
		return out
	}
	if b.FailedEarly && !b.Phase.Terminal() && pc.FailFast {
		t.emit(Action{ID: "cancel/" + bs.ID, Kind: ActCancel, Pipeline: p.Name, Queue: it.Queue, Item: it.ID,
			BuildSet: bs.ID, Change: specOf(&it.Change), Reason: "fail-fast: a node failed"})
		b.Phase = PhaseFailed
		b.FinishedAt = t.now
		b.Message = "a node failed; the rest was cancelled (fail-fast)"
	}
	switch {
	case bs.ConfigError != "":
		out = append(out, "its workflow configuration is broken")
	case b.Phase == PhaseFailed || b.Phase == PhaseError:
		out = append(out, "its workflow failed")
	case b.FailedEarly && !b.Phase.Terminal():
		// The workflow's own verdict wins once it has one: a node may
		// fail in a workflow that tolerates it.
		out = append(out, "a node of its workflow failed")
	}
	return out
}

// complete reports whether the item's test has a final answer.
func complete(it *Item) bool {
	bs := it.BuildSet
	if bs == nil {
		return false
	}
	if bs.Merge == MergeConflict || bs.Merge == MergeError {
		return true
	}
	return bs.Build != nil && !bs.Build.Cancelled && bs.Build.Phase.Terminal()
}

// finish reports a completed item at the head of its queue. A dependent
// pipeline's success submits and waits for the answer (finish returns
// true: the item stays); everything else leaves at once.
func (t *tx) finish(pc *PipelineConfig, p *PipelineState, q *Queue, it *Item) bool {
	outcome, body := verdict(pc, it)
	if outcome == OutcomeSuccess && pc.Manager == Dependent {
		if a := t.report(pc, it, outcome, body, true); a != nil {
			it.Submitting = a.ID
			return true
		}
	}
	t.report(pc, it, outcome, body, false)
	why := ""
	if outcome != OutcomeSuccess {
		why = "it failed: " + string(outcome)
		if pc.Manager == Dependent {
			t.shrinkWindow(pc, q)
		}
	}
	t.dequeue(p, q, it, why)
	return false
}
