package pipeline

import (
	"fmt"
	"strings"
)

// admin carries out an operator command.
func (t *tx) admin(a *AdminEvent) {
	pc := t.e.cfg.Pipeline(a.Pipeline)
	if pc == nil {
		t.emit(Action{ID: fmt.Sprintf("notice/%d", t.nextSeq()), Kind: ActNotice, Pipeline: a.Pipeline,
			Reason: fmt.Sprintf("%s: no pipeline named %q", a.Op, a.Pipeline)})
		return
	}
	p := t.s.Pipeline(pc.Name)
	switch a.Op {
	case AdminEnqueue:
		if a.Change == nil {
			t.notice(pc, "enqueue", "no change given")
			return
		}
		ev := cloneTrigger(&TriggerEvent{Change: a.Change, Related: a.Related})
		t.refresh(ev.Change, "")
		t.enqueue(pc, p, ev.Change, 0, relatedMap(ev.Change, ev.Related), enqueueOpts{report: true, force: a.Force})
	case AdminDequeue:
		if len(a.Changes) != 1 {
			t.notice(pc, "dequeue", "name exactly one change")
			return
		}
		found := false
		for _, it := range append([]*Item(nil), p.itemsForKey(a.Changes[0])...) {
			if it.Live {
				found = true
				t.dequeue(p, p.queue(it.Queue), it, "dequeued by an operator")
			}
		}
		if !found {
			t.notice(pc, "dequeue", fmt.Sprintf("change %s is not in the pipeline", a.Changes[0]))
		}
	case AdminPromote:
		t.promote(pc, p, a.Changes)
	default:
		t.notice(pc, string(a.Op), "unknown operator command")
	}
}

// promote moves the named changes to the head of their queue in the given
// order; the others keep their order behind them. Only buildsets whose
// speculative list changes are redone.
func (t *tx) promote(pc *PipelineConfig, p *PipelineState, keys []ChangeKey) {
	if pc.Manager != Dependent {
		t.notice(pc, "promote", "only dependent pipelines can promote")
		return
	}
	if len(keys) == 0 {
		t.notice(pc, "promote", "name at least one change")
		return
	}
	var q *Queue
	var first []*Item
	seen := map[*Item]bool{}
	for _, k := range keys {
		items := p.itemsForKey(k)
		if len(items) == 0 {
			t.notice(pc, "promote", fmt.Sprintf("change %s is not in the pipeline", k))
			return
		}
		it := items[len(items)-1]
		if q == nil {
			q = p.queue(it.Queue)
		} else if it.Queue != q.Name {
			t.notice(pc, "promote", fmt.Sprintf("change %s is in queue %s, not %s", k, it.Queue, q.Name))
			return
		}
		if !seen[it] {
			seen[it] = true
			first = append(first, it)
		}
	}
	// An item whose submit is in flight is about to merge: it stays ahead
	// of everything, or the promoted items would be tested without it.
	var order []*Item
	for _, it := range q.Items {
		if it.Submitting != "" {
			order = append(order, it)
			seen[it] = true
		}
	}
	for _, it := range first {
		if it.Submitting == "" {
			order = append(order, it)
		}
	}
	for _, it := range q.Items {
		if !seen[it] {
			order = append(order, it)
		}
	}
	pos := map[ChangeKey]int{}
	for i, it := range order {
		pos[it.Change.Key()] = i
	}
	for i, it := range order {
		for _, n := range it.Change.Needs {
			if j, ok := pos[n.Change]; ok && !n.Merged && j > i {
				t.notice(pc, "promote", fmt.Sprintf("change %s needs change %s, which would be behind it", it.Change.Key(), n.Change))
				return
			}
		}
	}
	names := make([]string, len(first))
	for i, it := range first {
		names[i] = it.Change.Key().String()
	}
	q.Items = order
	for i, it := range order {
		it.Ahead = ""
		if i > 0 {
			it.Ahead = order[i-1].ID
		}
	}
	t.notice(pc, "promote", "promoted "+strings.Join(names, ", ")+" in queue "+q.Name)
	t.markDirty(p, q)
}
