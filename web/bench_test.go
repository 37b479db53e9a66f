package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// bigState is a gate pipeline of queues×perQueue items, every one with a
// buildset and a running workflow of three nodes.
func bigState(queues, perQueue int, at time.Time) *pipeline.State {
	st := pipeline.NewState()
	p := &pipeline.PipelineState{Name: "gate"}
	st.Pipelines = []*pipeline.PipelineState{{Name: "check"}, p}
	n := 0
	for qi := 0; qi < queues; qi++ {
		q := &pipeline.Queue{Name: fmt.Sprintf("shared-%02d@master", qi), Window: perQueue}
		var specs []pipeline.Spec
		prev := ""
		for ii := 0; ii < perQueue; ii++ {
			n++
			project := fmt.Sprintf("org/project-%03d", (qi*7+ii)%150)
			c := pipeline.Change{Project: project, Branch: "master", Number: 100000 + n, Patchset: 3,
				Ref: fmt.Sprintf("refs/changes/%02d/%d/3", n%100, 100000+n), Commit: fmt.Sprintf("%040x", n),
				Subject: fmt.Sprintf("Change number %d with a subject of typical length", n), Owner: "developer",
				Status: pipeline.StatusNew}
			spec := pipeline.Spec{Project: c.Project, Branch: c.Branch, Number: c.Number, Patchset: c.Patchset, Ref: c.Ref, Commit: c.Commit}
			specs = append(specs, spec)
			id := fmt.Sprintf("gate-%d", n)
			bs := id + ".1"
			it := &pipeline.Item{ID: id, N: int64(n), Queue: q.Name, Change: c, Live: true, Active: true, Ahead: prev,
				EnqueuedAt: at.Add(-time.Duration(perQueue-ii) * time.Minute),
				BuildSet: &pipeline.BuildSet{ID: bs, Changes: append([]pipeline.Spec(nil), specs...),
					Merge: pipeline.MergeReady, CreatedAt: at.Add(-10 * time.Minute),
					Build: &pipeline.Build{Phase: pipeline.PhaseRunning, URL: argoURL(bs), StartedAt: at.Add(-9 * time.Minute),
						Nodes: []pipeline.NodeResult{
							{Name: "lint", Phase: pipeline.PhaseSucceeded, URL: testArgo + "ci/" + bs + "/lint"},
							{Name: "unit", Phase: pipeline.PhaseRunning, URL: testArgo + "ci/" + bs + "/unit"},
							{Name: "integration", Phase: pipeline.PhasePending},
						}}}}
			if ii%17 == 5 {
				it.Failing = []string{"its workflow failed"}
			}
			q.Items = append(q.Items, it)
			prev = id
		}
		p.Queues = append(p.Queues, q)
	}
	st.Seq = int64(n)
	return st
}

// BenchmarkStatusJSON measures GET /api/status through the handler with
// 1,000 items (20 queues × 50): from the cache (same turn and second),
// after the clock ticked (durations recomputed and the document encoded
// again; -gzip: and compressed), and after a new turn (the view rebuilt
// from the snapshot), one client and many in parallel. B/response is the
// size of the (compressed) body.
func BenchmarkStatusJSON(b *testing.B) {
	w := newWorld(b)
	at := w.now
	st := bigState(20, 50, at)
	h := newHarness(b, w)
	var turn atomic.Uint64
	turn.Store(1)
	snap := func() *scheduler.Snapshot { return &scheduler.Snapshot{Turn: turn.Load(), At: at, State: st} }
	h.snaps.set(snap())
	var size atomic.Int64
	var gzipped atomic.Bool
	get := func(b *testing.B) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/api/status", nil)
		if gzipped.Load() {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		h.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Errorf("GET /api/status: %d", rec.Code) // Errorf: RunParallel's goroutines may not FailNow
		}
		size.Store(int64(rec.Body.Len()))
	}
	get(b)
	var items int
	for _, p := range decode[Status](b, mustBody(h)).Pipelines {
		for _, q := range p.Queues {
			items += len(q.Items)
		}
	}
	if items != 1000 {
		b.Fatalf("the status shows %d items, want 1000", items)
	}
	report := func(b *testing.B) {
		b.SetBytes(size.Load())
		b.ReportMetric(float64(size.Load()), "B/response")
	}
	var tick atomic.Int64
	next := func() { h.clock.set(at.Add(time.Duration(tick.Add(1)) * time.Second)) }
	newTurn := func() { turn.Add(1); h.snaps.set(snap()) }

	for _, c := range []struct {
		name   string
		before func()
		gzip   bool
	}{
		{"cached", func() {}, false},
		{"new-second", next, false},
		{"new-second-gzip", next, true},
		{"new-turn", newTurn, false},
	} {
		gzipped.Store(c.gzip)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.before()
				get(b)
			}
			report(b)
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.before()
					get(b)
				}
			})
			report(b)
		})
	}
}

// BenchmarkStatusPage measures GET / (server-rendered HTML) with 1,000
// items, rendered again each time (the clock ticks a second per request).
func BenchmarkStatusPage(b *testing.B) {
	w := newWorld(b)
	at := w.now
	h := newHarness(b, w)
	h.snaps.set(&scheduler.Snapshot{Turn: 1, At: at, State: bigState(20, 50, at)})
	var size int
	tick := 0
	b.ReportAllocs()
	for b.Loop() {
		tick++
		h.clock.set(at.Add(time.Duration(tick) * time.Second))
		rec := h.get("/")
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /: %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.SetBytes(int64(size))
	b.ReportMetric(float64(size), "B/response")
}

func mustBody(h *harness) []byte {
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/status", nil))
	return rec.Body.Bytes()
}
