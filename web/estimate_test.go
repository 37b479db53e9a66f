package web

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/store"
)

// historyStub serves history entries per pipeline and project and counts
// the reads.
type historyStub struct {
	mu      sync.Mutex
	entries map[[2]string][]store.HistoryEntry
	err     error
	reads   map[[2]string]int
}

func (h *historyStub) read(pipelineName, project string, limit int) ([]store.HistoryEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reads == nil {
		h.reads = map[[2]string]int{}
	}
	h.reads[[2]string{pipelineName, project}]++
	if h.err != nil {
		return nil, h.err
	}
	hs := h.entries[[2]string{pipelineName, project}]
	if limit > 0 && len(hs) > limit {
		hs = hs[:limit]
	}
	return hs, nil
}

func (h *historyStub) count(pipelineName, project string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads[[2]string{pipelineName, project}]
}

func build(outcome string, started time.Time, d time.Duration) store.HistoryEntry {
	return store.HistoryEntry{Pipeline: "gate", Project: "org/a", Outcome: outcome, StartedAt: started, FinishedAt: started.Add(d)}
}

func TestEstimateIsTheMedianOfRecentSuccessfulBuilds(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hist := &historyStub{entries: map[[2]string][]store.HistoryEntry{
		{"gate", "org/a"}: {
			build("success", t0, 300*time.Second),
			build("failure", t0, 5000*time.Second), // failures do not count
			build("success", t0, 100*time.Second),
			{Pipeline: "gate", Project: "org/a", Outcome: "success", FinishedAt: t0}, // no start: no duration
			build("success", t0, 200*time.Second),
		},
	}}
	w := gateScenario(t)
	h := newHarness(t, w, func(o *Options) {
		o.History = hist.read
		o.DefaultEstimate = 7 * time.Minute
	})
	st := decode[Status](t, h.get("/api/status").Body.Bytes())
	for _, it := range findQueue(t, st, "gate", "integrated@master").Items {
		want := int64(420) // org/b has no history: the default
		if it.Change.Project == "org/a" {
			want = 200
		}
		if it.EstimatedSeconds != want || it.Build.EstimatedSeconds != want {
			t.Errorf("%s %d: estimated %d (build %d), want %d", it.Change.Project, it.Change.Number,
				it.EstimatedSeconds, it.Build.EstimatedSeconds, want)
		}
		if it.Build.FinishedAt == nil && it.Build.RemainingSeconds != max(0, want-it.Build.ElapsedSeconds) {
			t.Errorf("%d: remaining %d, want max(0, %d - %d)", it.Change.Number, it.Build.RemainingSeconds, want, it.Build.ElapsedSeconds)
		}
	}
}

func TestEstimatesAreCachedAcrossTurnsUntilTheyExpire(t *testing.T) {
	hist := &historyStub{}
	w := gateScenario(t)
	h := newHarness(t, w, func(o *Options) {
		o.History = hist.read
		o.EstimateTTL = time.Minute
	})
	h.get("/api/status")
	if n := hist.count("gate", "org/a"); n != 1 {
		t.Fatalf("history of gate/org/a read %d times for one view of 3 of its items, want 1", n)
	}
	// New turns within the TTL: no reads.
	for i := 0; i < 3; i++ {
		w.apply(time.Second, pipeline.Event{Tick: &pipeline.Tick{}})
		h.snaps.set(w.snapshot())
		h.get("/api/status")
		h.get("/")
	}
	if n := hist.count("gate", "org/a"); n != 1 {
		t.Errorf("history read %d times within the TTL, want 1", n)
	}
	h.clock.set(h.clock.Now().Add(time.Minute))
	w.apply(time.Second, pipeline.Event{Tick: &pipeline.Tick{}})
	h.snaps.set(w.snapshot())
	h.get("/api/status")
	if n := hist.count("gate", "org/a"); n != 2 {
		t.Errorf("history read %d times after the TTL, want 2", n)
	}
}

func TestUnreadableHistoryFallsBackToTheDefault(t *testing.T) {
	hist := &historyStub{err: errors.New("store closed")}
	w := gateScenario(t)
	h := newHarness(t, w, func(o *Options) { o.History = hist.read })
	st := decode[Status](t, h.get("/api/status").Body.Bytes())
	for _, it := range findQueue(t, st, "gate", "integrated@master").Items {
		if it.EstimatedSeconds != int64(DefaultEstimate/time.Second) {
			t.Errorf("%d: estimated %d with an unreadable history", it.Change.Number, it.EstimatedSeconds)
		}
	}
}

func TestMedianOfAnEvenNumberOfBuilds(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d, ok := medianBuild([]store.HistoryEntry{build("success", t0, 100*time.Second), build("success", t0, 200*time.Second)})
	if !ok || d != 150*time.Second {
		t.Errorf("median of 100s and 200s = %v %v, want 150s", d, ok)
	}
	if _, ok := medianBuild([]store.HistoryEntry{build("failure", t0, time.Second)}); ok {
		t.Error("a median from failed builds only")
	}
	var many []store.HistoryEntry
	for i := 1; i <= 30; i++ { // newest first: only the newest 20 count
		many = append(many, build("success", t0, time.Duration(i)*time.Second))
	}
	if d, _ := medianBuild(many); d != 10500*time.Millisecond {
		t.Errorf("median of the newest 20 of 30 = %v, want 10.5s", d)
	}
}
