package pipeline

import (
	"fmt"
	"sort"
	"strings"
)

type enqueueOpts struct {
	report bool // tell the change why it was refused
	force  bool // skip the pipeline requirements (operator enqueue)
}

// enqueue puts c into pipeline p if it qualifies, with the changes it needs
// ahead of it, and (dependent pipelines) the qualifying changes that need it
// behind it. It reports whether c is in the pipeline afterwards.
func (t *tx) enqueue(pc *PipelineConfig, p *PipelineState, c *Change, patchset int, related map[ChangeKey]*Change, o enqueueOpts) bool {
	if pc.projRE != nil && !pc.projRE.MatchString(c.Project) {
		return false
	}
	if !c.IsRef() && patchset != 0 && patchset != c.Patchset {
		t.notice(pc, c.String(), fmt.Sprintf("not enqueued: the event is about patchset %d, the current one is %d", patchset, c.Patchset))
		return false
	}
	if p.queued(c) {
		return true
	}
	if pc.Manager == Dependent && !c.isOpen() {
		t.notice(pc, c.String(), "not enqueued: the change is "+strings.ToLower(string(c.Status)))
		return false
	}
	if !o.force {
		if why := pc.unmet(c, c.Patchset); why != "" {
			t.notice(pc, c.String(), "not enqueued: "+why)
			return false
		}
	}
	switch pc.Manager {
	case Independent:
		return t.enqueueIndependent(pc, p, c, related, o)
	case Dependent:
		return t.enqueueDependent(pc, p, c, related, o)
	default:
		t.enqueueSupercedent(pc, p, c)
		return true
	}
}

// queued reports whether this patchset (or ref revision) is already a live
// item of the pipeline.
func (p *PipelineState) queued(c *Change) bool {
	for _, it := range p.itemsFor(c) {
		if it.Live && it.Change.Patchset == c.Patchset {
			return true
		}
	}
	return false
}

// neededChanges returns the open changes c needs, transitively, each after
// the changes it needs itself, or why c cannot be tested.
func (t *tx) neededChanges(c *Change, related map[ChangeKey]*Change) ([]*Change, string) {
	if len(c.Unresolved) > 0 {
		return nil, fmt.Sprintf("its Depends-On %s could not be resolved to a change", strings.Join(c.Unresolved, ", "))
	}
	const (
		visiting = 1
		done     = 2
	)
	mark := map[ChangeKey]int{}
	var order []*Change
	var path []ChangeKey
	var visit func(x *Change) string
	visit = func(x *Change) string {
		mark[x.Key()] = visiting
		path = append(path, x.Key())
		for i := range x.Needs {
			n := &x.Needs[i]
			if n.Merged {
				continue
			}
			snap := related[n.Change]
			if snap == nil {
				return fmt.Sprintf("it depends on change %s, which Seakeeper could not look up", n.Change)
			}
			if snap.Status == StatusMerged {
				n.Merged = true
				continue
			}
			if snap.Status == StatusAbandoned {
				return fmt.Sprintf("it depends on change %s, which is abandoned", n.Change)
			}
			if n.Patchset != 0 && n.Patchset != snap.Patchset {
				return fmt.Sprintf("it depends on patchset %d of change %s, which is outdated (the current patchset is %d); rebase it", n.Patchset, n.Change, snap.Patchset)
			}
			switch mark[n.Change] {
			case visiting:
				var cyc []string
				for i := len(path) - 1; i >= 0; i-- {
					cyc = append([]string{path[i].String()}, cyc...)
					if path[i] == n.Change {
						break
					}
				}
				return "of a dependency cycle: " + strings.Join(append(cyc, n.Change.String()), " -> ")
			case done:
				continue
			}
			if why := visit(snap); why != "" {
				return why
			}
		}
		path = path[:len(path)-1]
		mark[x.Key()] = done
		if x != c {
			order = append(order, x)
		}
		return ""
	}
	if why := visit(c); why != "" {
		return nil, why
	}
	return order, ""
}

// refuse tells a change why it cannot enter the pipeline: a message without
// votes, since nothing was tested.
func (t *tx) refuse(pc *PipelineConfig, c *Change, why string, o enqueueOpts) {
	t.notice(pc, c.String(), "not enqueued: "+why)
	if !o.report || c.IsRef() {
		return
	}
	id := fmt.Sprintf("report/%s/%d/refused", pc.Name, t.nextSeq())
	t.emit(Action{ID: id, Kind: ActReport, Pipeline: pc.Name, Change: specOf(c), Report: &ReportAction{
		Outcome: OutcomeDequeued,
		Message: fmt.Sprintf("Seakeeper cannot enqueue this change in the %s pipeline because %s.", pc.Name, why),
		Tag:     tag(pc),
	}})
}

func (t *tx) enqueueIndependent(pc *PipelineConfig, p *PipelineState, c *Change, related map[ChangeKey]*Change, o enqueueOpts) bool {
	needed, why := t.neededChanges(c, related)
	if why != "" {
		t.refuse(pc, c, why, o)
		return false
	}
	q := &Queue{Name: fmt.Sprintf("%s-q%d", pc.Name, t.nextSeq())}
	p.addQueue(q)
	for _, n := range needed {
		t.newItem(p, q, n, false)
	}
	t.startReport(pc, t.newItem(p, q, c, true))
	return true
}

// gateQueueName is the shared queue (or project) and branch of a change:
// changes of different branches never share a speculative state.
func (t *tx) gateQueueName(c *Change) string {
	name := t.e.cfg.QueueOf(c.Project)
	if name == "" {
		name = c.Project
	}
	return name + "@" + c.Branch
}

func (t *tx) enqueueDependent(pc *PipelineConfig, p *PipelineState, c *Change, related map[ChangeKey]*Change, o enqueueOpts) bool {
	needed, why := t.neededChanges(c, related)
	if why != "" {
		t.refuse(pc, c, why, o)
		return false
	}
	qn := t.gateQueueName(c)
	// Check every needed change before enqueueing any, so a refusal leaves
	// the queue as it was.
	var toAdd []*Change
	for _, n := range needed {
		if items := p.itemsFor(n); len(items) > 0 {
			if items[0].Queue != qn {
				t.refuse(pc, c, fmt.Sprintf("it depends on change %s, which is in the %s queue, not in %s", n.Key(), items[0].Queue, qn), o)
				return false
			}
			continue
		}
		if nq := t.gateQueueName(n); nq != qn {
			t.refuse(pc, c, fmt.Sprintf("it depends on change %s, which belongs to the %s queue, not to %s; changes that depend on each other must share a queue", n.Key(), nq, qn), o)
			return false
		}
		if u := pc.unmet(n, n.Patchset); u != "" && !o.force {
			t.refuse(pc, c, fmt.Sprintf("it depends on change %s, which cannot enter the %s pipeline because %s", n.Key(), pc.Name, u), o)
			return false
		}
		toAdd = append(toAdd, n)
	}
	q := p.queue(qn)
	if q == nil {
		q = &Queue{Name: qn, Window: pc.Window.Initial}
		p.addQueue(q)
	}
	for _, n := range toAdd {
		t.startReport(pc, t.newItem(p, q, n, true))
	}
	t.startReport(pc, t.newItem(p, q, c, true))

	// Changes that were waiting for this one may follow it now, in
	// change-number order.
	behind := append([]ChangeKey(nil), c.NeededBy...)
	sort.Slice(behind, func(i, j int) bool {
		if behind[i].Number != behind[j].Number {
			return behind[i].Number < behind[j].Number
		}
		return behind[i].Project < behind[j].Project
	})
	for _, k := range behind {
		if d := related[k]; d != nil && d.isOpen() && !p.queued(d) {
			t.enqueue(pc, p, d, 0, related, enqueueOpts{})
		}
	}
	return true
}

// enqueueSupercedent keeps at most the running item and the newest waiting
// one per project and ref: a newer waiting item replaces the older.
func (t *tx) enqueueSupercedent(pc *PipelineConfig, p *PipelineState, c *Change) {
	ref := c.Ref
	if !c.IsRef() {
		ref = "refs/heads/" + c.Branch
	}
	qn := c.Project + "@" + ref
	q := p.queue(qn)
	if q == nil {
		q = &Queue{Name: qn, Window: 1}
		p.addQueue(q)
	}
	t.newItem(p, q, c, true)
	for len(q.Items) > 2 {
		t.dequeue(p, q, q.Items[1], "superseded by a newer item")
	}
}

func (t *tx) newItem(p *PipelineState, q *Queue, c *Change, live bool) *Item {
	n := t.nextSeq()
	it := &Item{ID: fmt.Sprintf("%s-%d", p.Name, n), N: n, Queue: q.Name, Change: cloneChange(c), Live: live, EnqueuedAt: t.now}
	if len(q.Items) > 0 {
		it.Ahead = q.Items[len(q.Items)-1].ID
	}
	q.Items = append(q.Items, it)
	p.index().add(it)
	t.markDirty(p, q)
	return it
}

func cloneChange(c *Change) Change {
	out := *c
	out.Approvals = append([]Approval(nil), c.Approvals...)
	out.Needs = append([]Need(nil), c.Needs...)
	out.NeededBy = append([]ChangeKey(nil), c.NeededBy...)
	out.Unresolved = append([]string(nil), c.Unresolved...)
	return out
}
