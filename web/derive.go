package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// deriver turns scheduler turns into metric updates. It remembers the
// items of the previous turn's state, which is what the engine decided
// on when it applied this turn's events: an item new since is enqueued,
// a submit result for the report the item was waiting for is a merge, a
// terminal build result for a build that was running is a build.
//
// The first turn after a start has no previous state: its items count as
// enqueued when their enqueue time is not before the turn's first event,
// and results about items of the loaded state are not counted.
type deriver struct {
	cfg        *pipeline.Config
	restricted func(project string) bool

	seeded  bool
	lastSeq int64
	items   map[string]itemInfo // by item ID, of the previous state
	byBS    map[string]string   // buildset ID -> item ID, of the previous state
}

// itemInfo is what the deriver keeps of an item between turns.
type itemInfo struct {
	pipeline   string
	change     pipeline.ChangeKey
	enqueuedAt time.Time
	submitting string // the report action whose submit is in flight
	building   bool   // its build runs (not terminal)
	started    time.Time
}

// derived is the metric updates of one turn.
type derived struct {
	applied       []string
	enqueued      []string // pipeline per new item
	merged        []merge
	failed        [][2]string // pipeline, outcome
	resets        []string
	builds        []buildDone
	queues        []queueGauge
	pipelineItems map[string]int
	running       map[string]int
}

type merge struct {
	pipeline string
	wait     time.Duration // enqueue to merge; negative when unknown
}

type buildDone struct {
	pipeline, phase string
	d               time.Duration
}

type queueGauge struct {
	pipeline, name        string
	items, active, window int
}

func eventKind(ev *pipeline.Event) string {
	switch {
	case ev.Trigger != nil:
		return "trigger"
	case ev.Merge != nil:
		return "merge"
	case ev.Build != nil:
		return "build"
	case ev.Report != nil:
		return "report"
	case ev.Admin != nil:
		return "admin"
	case ev.Tick != nil:
		return "tick"
	}
	return "unknown"
}

func (d *deriver) turn(t scheduler.TurnStats) derived {
	var out derived
	var first time.Time
	mergedChanges := map[pipeline.ChangeKey]bool{}
	for i := range t.Applied {
		ev := &t.Applied[i]
		out.applied = append(out.applied, eventKind(ev))
		if first.IsZero() || ev.Time.Before(first) {
			first = ev.Time
		}
		switch {
		case ev.Build != nil:
			d.buildResult(ev, &out)
		case ev.Report != nil:
			d.reportResult(ev, &out)
		case ev.Trigger != nil && ev.Trigger.Type == "change-merged" && ev.Trigger.Change != nil:
			mergedChanges[ev.Trigger.Change.Key()] = true
		}
	}
	for _, a := range t.Emitted {
		switch a.Kind {
		case pipeline.ActReport:
			if r := a.Report; r != nil {
				switch r.Outcome {
				case pipeline.OutcomeFailure, pipeline.OutcomeMergeConflict, pipeline.OutcomeConfigError:
					out.failed = append(out.failed, [2]string{a.Pipeline, string(r.Outcome)})
				}
			}
		case pipeline.ActPrepare:
			if d.isReset(a) {
				out.resets = append(out.resets, a.Pipeline)
			}
		}
	}
	if t.State == nil {
		return out
	}

	items := make(map[string]itemInfo, len(d.items))
	byBS := make(map[string]string, len(d.byBS))
	out.pipelineItems = map[string]int{}
	out.running = map[string]int{}
	for _, p := range t.State.Pipelines {
		pc := d.cfg.Pipeline(p.Name)
		out.pipelineItems[p.Name] += 0
		out.running[p.Name] += 0
		for _, q := range p.Queues {
			qg := queueGauge{pipeline: p.Name, name: d.queueLabel(q.Name), window: q.Window}
			for _, it := range q.Items {
				info := itemInfo{pipeline: p.Name, change: it.Change.Key(), enqueuedAt: it.EnqueuedAt, submitting: it.Submitting}
				if bs := it.BuildSet; bs != nil {
					byBS[bs.ID] = it.ID
					if b := bs.Build; b != nil && !b.Phase.Terminal() {
						info.building, info.started = true, b.StartedAt
						out.running[p.Name]++
					}
				}
				items[it.ID] = info
				if _, known := d.items[it.ID]; !known && (d.seeded || !it.EnqueuedAt.Before(first) && !first.IsZero()) {
					out.enqueued = append(out.enqueued, p.Name)
				}
				qg.items++
				if it.Active {
					qg.active++
				}
			}
			out.pipelineItems[p.Name] += len(q.Items)
			if pc != nil && pc.Manager == pipeline.Dependent {
				out.queues = mergeQueue(out.queues, qg)
			}
		}
	}
	if d.seeded {
		// Items that came and went within the turn show in its actions.
		seen := map[string]bool{}
		for _, a := range t.Emitted {
			if a.Item == "" || seen[a.Item] {
				continue
			}
			seen[a.Item] = true
			_, before := d.items[a.Item]
			_, after := items[a.Item]
			if !before && !after && itemSeq(a.Pipeline, a.Item) > d.lastSeq {
				out.enqueued = append(out.enqueued, a.Pipeline)
			}
		}
		// A submit whose change-merged event overtook its answer: the
		// engine takes it as our merge.
		for id, info := range d.items {
			if _, still := items[id]; !still && info.submitting != "" && mergedChanges[info.change] {
				out.merged = append(out.merged, merge{pipeline: info.pipeline, wait: lastTime(t.Applied).Sub(info.enqueuedAt)})
			}
		}
	}
	d.items, d.byBS, d.lastSeq, d.seeded = items, byBS, t.State.Seq, true
	return out
}

// buildResult records a terminal result of a build that was running.
func (d *deriver) buildResult(ev *pipeline.Event, out *derived) {
	r := ev.Build
	if !r.Phase.Terminal() || r.ConfigError != "" {
		return
	}
	id, ok := d.byBS[r.BuildSet]
	if !ok {
		return
	}
	info := d.items[id]
	if !info.building {
		return
	}
	start, end := r.StartedAt, r.FinishedAt
	if start.IsZero() {
		start = info.started
	}
	if end.IsZero() {
		end = ev.Time
	}
	if !start.IsZero() && !end.Before(start) {
		out.builds = append(out.builds, buildDone{pipeline: info.pipeline, phase: string(r.Phase), d: end.Sub(start)})
	}
	info.building = false
	d.items[id] = info
}

// reportResult records a merge: the answer to the submit the item waited
// for, saying merged.
func (d *deriver) reportResult(ev *pipeline.Event, out *derived) {
	r := ev.Report
	id, ok := d.byBS[r.BuildSet]
	if !ok {
		return
	}
	info := d.items[id]
	if info.submitting == "" || info.submitting != r.ActionID {
		return
	}
	if r.Status == pipeline.ReportOK || r.Status == pipeline.ReportAlreadyMerged {
		out.merged = append(out.merged, merge{pipeline: info.pipeline, wait: ev.Time.Sub(info.enqueuedAt)})
	}
	info.submitting = ""
	d.items[id] = info
}

// isReset reports whether a is the first prepare of a buildset after the
// item's first, in a dependent pipeline: the changes ahead changed.
func (d *deriver) isReset(a pipeline.Action) bool {
	pc := d.cfg.Pipeline(a.Pipeline)
	if pc == nil || pc.Manager != pipeline.Dependent || a.ID != "prepare/"+a.BuildSet {
		return false // not dependent, or a merge retry (prepare/<bs>/<n>)
	}
	i := strings.LastIndexByte(a.BuildSet, '.')
	if i < 0 {
		return false
	}
	attempt, err := strconv.Atoi(a.BuildSet[i+1:])
	return err == nil && attempt > 1
}

// queueLabel is the queue label of a dependent queue: its name, or
// "(restricted)" for the queue of a restricted project
// ("<project>@<branch>"), whose name must not show.
func (d *deriver) queueLabel(name string) string {
	if i := strings.LastIndexByte(name, '@'); i > 0 && d.restricted(name[:i]) {
		return "(restricted)"
	}
	return name
}

// mergeQueue adds g to qs, summing into an existing entry of the same
// pipeline and label (restricted queues share one).
func mergeQueue(qs []queueGauge, g queueGauge) []queueGauge {
	for i := range qs {
		if qs[i].pipeline == g.pipeline && qs[i].name == g.name {
			qs[i].items += g.items
			qs[i].active += g.active
			qs[i].window += g.window
			return qs
		}
	}
	return append(qs, g)
}

// itemSeq is the enqueue sequence number of an item ID "<pipeline>-<n>".
func itemSeq(pipelineName, id string) int64 {
	n, err := strconv.ParseInt(strings.TrimPrefix(id, pipelineName+"-"), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func lastTime(evs []pipeline.Event) time.Time {
	var t time.Time
	for _, ev := range evs {
		if ev.Time.After(t) {
			t = ev.Time
		}
	}
	return t
}
