package pipeline

import (
	"fmt"
	"strings"
)

// zeroRev is the revision Gerrit gives a created or deleted ref's missing side.
const zeroRev = "0000000000000000000000000000000000000000"

// trigger handles a Gerrit event: first what it says about changes already
// queued (new patchset, abandoned, merged, private, lost approval), then
// whether it enqueues something.
func (t *tx) trigger(ev *TriggerEvent) {
	if ev.Change != nil {
		t.refresh(ev.Change, ev.Type)
	}
	for i := range ev.Related {
		t.refresh(&ev.Related[i], "")
	}
	t.pipelines(func(pc *PipelineConfig, p *PipelineState) {
		if !pc.triggeredBy(ev) {
			return
		}
		subject := t.subjectOf(ev)
		if subject == nil {
			return
		}
		t.enqueue(pc, p, subject, ev.Patchset, relatedMap(ev.Change, ev.Related), enqueueOpts{report: true})
	})
}

func (pc *PipelineConfig) triggeredBy(ev *TriggerEvent) bool {
	for i := range pc.triggers {
		if pc.triggers[i].matches(ev) {
			return true
		}
	}
	return false
}

// subjectOf is what a trigger event asks to test: its change, or for a ref
// update the new revision of the ref. Ref deletions test nothing.
func (t *tx) subjectOf(ev *TriggerEvent) *Change {
	if ev.Change != nil {
		return ev.Change
	}
	if ev.Type != "ref-updated" || ev.NewRev == "" || ev.NewRev == zeroRev {
		return nil
	}
	branch := ev.Branch
	if branch == "" && strings.HasPrefix(ev.Ref, "refs/heads/") {
		branch = strings.TrimPrefix(ev.Ref, "refs/heads/")
	}
	ref := ev.Ref
	if !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	return &Change{Project: ev.Project, Branch: branch, Ref: ref, Commit: ev.NewRev, OldRev: ev.OldRev}
}

func relatedMap(c *Change, related []Change) map[ChangeKey]*Change {
	m := make(map[ChangeKey]*Change, len(related)+1)
	for i := range related {
		m[related[i].Key()] = &related[i]
	}
	if c != nil && !c.IsRef() {
		m[c.Key()] = c
	}
	return m
}

// refresh brings every queued item of a change up to date with a new
// snapshot and dequeues those the news disqualifies.
func (t *tx) refresh(c *Change, evType string) {
	if c.IsRef() {
		return
	}
	t.pipelines(func(pc *PipelineConfig, p *PipelineState) {
		items := p.itemsFor(c)
		if len(items) == 0 {
			return
		}
		if c.Status == StatusMerged {
			seen := map[*Queue]bool{}
			for _, it := range items {
				q := p.queue(it.Queue)
				if !seen[q] {
					seen[q] = true
					t.changeMerged(p, q, c.Key())
				}
			}
			return
		}
		for _, it := range append([]*Item(nil), items...) {
			if it.gone || it.Submitting != "" {
				continue
			}
			q := p.queue(it.Queue)
			if c.Patchset < it.Change.Patchset {
				continue // a snapshot older than the item's: stale news
			}
			newer := c.Patchset > it.Change.Patchset
			switch {
			case c.Status == StatusAbandoned:
				t.dequeue(p, q, it, "change abandoned")
				continue
			case c.Private && !it.Change.Private:
				t.dequeue(p, q, it, "change made private")
				continue
			case c.WIP && !it.Change.WIP:
				t.dequeue(p, q, it, "change marked work in progress")
				continue
			case newer && pc.DequeueOnNew():
				t.dequeue(p, q, it, fmt.Sprintf("new patchset %d", c.Patchset))
				continue
			}
			if newer {
				// Keep testing the old patchset; take only what is not
				// tied to a patchset.
				it.Change.Status, it.Change.WIP, it.Change.Private = c.Status, c.WIP, c.Private
				continue
			}
			needs := it.Change.Needs
			it.Change = *c
			it.Change.Needs = mergeNeeds(needs, c.Needs)
			if it.Live && evType != "" {
				if why := pc.unmet(&it.Change, it.Change.Patchset); why != "" {
					t.report(pc, it, OutcomeDequeued, fmt.Sprintf("This change was removed from the %s pipeline because %s.", pc.Name, why), false)
					t.dequeue(p, q, it, "requirements no longer met")
				}
			}
			t.markDirty(p, q)
		}
	})
}

// mergeNeeds keeps what the core learned (merged flags) across a snapshot
// that lists the same needs; a snapshot with other needs (a rebase keeps the
// patchset only for trivial rebases) replaces them.
func mergeNeeds(old, fresh []Need) []Need {
	out := make([]Need, len(fresh))
	copy(out, fresh)
	for i := range out {
		for _, o := range old {
			if o.Change == out[i].Change && o.Merged {
				out[i].Merged = true
			}
		}
	}
	return out
}
