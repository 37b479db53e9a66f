package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/store"
)

// maxIntakeBatch bounds the stream items written to the inbox in one go.
const maxIntakeBatch = 256

// intake writes the stream item it, and whatever else the stream holds
// already, to the inbox before anything else happens to them; a Resync item
// starts a resync. Events Seakeeper ignores (see gerrit.Normalize) are
// dropped here.
func (s *Scheduler) intake(ctx context.Context, it gerrit.StreamItem, stream <-chan gerrit.StreamItem) error {
	items := []gerrit.StreamItem{it}
more:
	for len(items) < maxIntakeBatch {
		select {
		case next, ok := <-stream:
			if !ok {
				break more
			}
			items = append(items, next)
		default:
			break more
		}
	}
	now := s.o.Clock.Now()
	var evs []pipeline.Event
	resync := false
	for _, it := range items {
		var lag time.Duration
		if it.Event != nil && it.Event.EventCreatedOn > 0 {
			lag = now.Sub(time.Unix(int64(it.Event.EventCreatedOn), 0))
		}
		s.o.Observer.StreamItem(it, lag)
		if it.Err != nil {
			s.log.Warn("gerrit stream", "err", it.Err)
		}
		if it.Resync != "" {
			s.log.Info("gerrit stream asks for a resync", "reason", string(it.Resync))
			resync = true
		}
		if it.Event == nil {
			continue
		}
		if trig, ok := gerrit.Normalize(it.Event); ok {
			evs = append(evs, pipeline.Event{Time: now, Trigger: trig})
		}
	}
	if _, err := s.o.Store.AppendInbox(evs...); err != nil {
		return fmt.Errorf("scheduler: events not saved (a restart resyncs): %w", err)
	}
	if resync {
		s.resync(ctx)
	}
	return nil
}

// needsSettle says whether an inbox event came from the stream about a
// change, and so rests for the settle delay before it is applied.
func needsSettle(ev pipeline.Event) bool {
	return ev.Trigger != nil && ev.Trigger.Change != nil && !ev.Trigger.Change.IsRef()
}

// needsEnrich says whether an event's change is re-read over REST right
// before it is applied: stream events, and the enqueue events of a resync
// (whose snapshot may be older than a submit since).
func needsEnrich(ev pipeline.Event) bool {
	return needsSettle(ev) || ev.Admin != nil && ev.Admin.Op == pipeline.AdminEnqueue && ev.Admin.Change != nil
}

type enriched struct {
	event pipeline.Event
	drop  bool // about a patchset that is no longer current
	fail  bool // the re-read failed: try again later
}

// enrichAll re-reads the changes of the batch's triggers, at most Workers
// at a time; other events pass as they are.
func (s *Scheduler) enrichAll(ctx context.Context, batch []store.InboxEntry) []enriched {
	out := make([]enriched, len(batch))
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.o.Workers)
	for i, e := range batch {
		out[i].event = e.Event
		if !needsEnrich(e.Event) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = s.enrich(ctx, e.Event)
		}()
	}
	wg.Wait()
	now := s.o.Clock.Now()
	for i, e := range batch {
		if !out[i].fail || ctx.Err() != nil {
			continue // stopping: it stays in the inbox for the next start
		}
		r := s.retries[e.Seq]
		if r == nil {
			r = &enrichRetry{}
			s.retries[e.Seq] = r
		}
		r.attempts++
		if r.attempts >= maxEnrichAttempts {
			s.log.Warn("applying an event without a fresh snapshot of its change", "seq", e.Seq, "attempts", r.attempts)
			out[i] = enriched{event: e.Event}
			continue
		}
		r.at = now.Add(s.o.RetryBackoff << (r.attempts - 1))
		if s.readyAt.IsZero() || r.at.Before(s.readyAt) {
			s.readyAt = r.at
		}
	}
	return out
}

// stale says whether an event of this type about an older patchset than
// the current one is dropped.
func stale(typ string) bool { return typ == "patchset-created" || typ == "comment-added" }

// enrich replaces the change of a trigger event by a fresh REST snapshot
// and adds the snapshots of the changes it is related to.
func (s *Scheduler) enrich(ctx context.Context, ev pipeline.Event) enriched {
	if ev.Admin != nil {
		return s.enrichAdmin(ctx, ev)
	}
	trig := ev.Trigger
	key := trig.Change.Key()
	snap, err := s.o.Gerrit.ChangeSnapshot(ctx, key)
	if err != nil {
		s.log.Warn("cannot re-read change", "change", key.String(), "type", trig.Type, "err", err)
		return enriched{event: ev, fail: true}
	}
	if stale(trig.Type) && trig.Patchset != 0 && snap.Patchset > trig.Patchset {
		s.log.Info("dropping event about an old patchset", "change", key.String(), "type", trig.Type,
			"patchset", trig.Patchset, "current", snap.Patchset)
		return enriched{event: ev, drop: true}
	}
	related, err := s.related(ctx, snap)
	if err != nil {
		s.log.Warn("cannot read related changes", "change", key.String(), "err", err)
		return enriched{event: ev, fail: true}
	}
	t := *trig
	t.Change = snap
	t.Related = related
	ev.Trigger = &t
	return enriched{event: ev}
}

// related returns snapshots of the changes c needs and is needed by,
// recursively, at most RelatedLimit of them.
func (s *Scheduler) related(ctx context.Context, c *pipeline.Change) ([]pipeline.Change, error) {
	seen := map[pipeline.ChangeKey]bool{c.Key(): true}
	var queue []pipeline.ChangeKey
	add := func(c *pipeline.Change) {
		for _, n := range c.Needs {
			if !n.Merged && !seen[n.Change] {
				seen[n.Change] = true
				queue = append(queue, n.Change)
			}
		}
		for _, k := range c.NeededBy {
			if !seen[k] {
				seen[k] = true
				queue = append(queue, k)
			}
		}
	}
	add(c)
	var out []pipeline.Change
	for len(queue) > 0 && len(out) < s.o.RelatedLimit {
		k := queue[0]
		queue = queue[1:]
		snap, err := s.o.Gerrit.ChangeSnapshot(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, *snap)
		add(snap)
	}
	if len(queue) > 0 {
		s.log.Warn("related changes cut off", slog.String("change", c.Key().String()), slog.Int("limit", s.o.RelatedLimit))
	}
	return out, nil
}

// enrichAdmin re-reads the change of an enqueue event; one that is no
// longer open is dropped.
func (s *Scheduler) enrichAdmin(ctx context.Context, ev pipeline.Event) enriched {
	a := *ev.Admin
	key := a.Change.Key()
	snap, err := s.o.Gerrit.ChangeSnapshot(ctx, key)
	if err != nil {
		s.log.Warn("cannot re-read change", "change", key.String(), "op", string(a.Op), "err", err)
		return enriched{event: ev, fail: true}
	}
	if snap.Status != "" && snap.Status != pipeline.StatusNew {
		s.log.Info("dropping enqueue of a closed change", "change", key.String(), "status", string(snap.Status))
		return enriched{event: ev, drop: true}
	}
	related, err := s.related(ctx, snap)
	if err != nil {
		s.log.Warn("cannot read related changes", "change", key.String(), "err", err)
		return enriched{event: ev, fail: true}
	}
	a.Change, a.Related = snap, related
	ev.Admin = &a
	return enriched{event: ev}
}
