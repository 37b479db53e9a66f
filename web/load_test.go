package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/scheduler"
	"github.com/seakeeper-ci/seakeeper/store"
)

// The load benchmark runs the real scheduler loop (with in-memory adapters
// and a store without fsync) and the real handler on a socket.

type loadGerrit struct {
	mu      sync.Mutex
	changes map[pipeline.ChangeKey]pipeline.Change
}

func (g *loadGerrit) put(c pipeline.Change) {
	g.mu.Lock()
	g.changes[c.Key()] = c
	g.mu.Unlock()
}

func (g *loadGerrit) ChangeSnapshot(_ context.Context, k pipeline.ChangeKey) (*pipeline.Change, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.changes[k]
	if !ok {
		return nil, fmt.Errorf("change %s: %w", k, gerrit.ErrNotFound)
	}
	return &c, nil
}

func (g *loadGerrit) QueryOpen(context.Context, string) ([]pipeline.Change, error) { return nil, nil }
func (g *loadGerrit) Review(context.Context, pipeline.ChangeKey, string, gerrit.ReviewInput) error {
	return nil
}
func (g *loadGerrit) Submit(context.Context, pipeline.ChangeKey, string) error { return nil }

type loadMerger struct{}

func (loadMerger) Prepare(_ context.Context, bs string, changes []pipeline.Spec, _ string) pipeline.MergeResult {
	last := changes[len(changes)-1]
	return pipeline.MergeResult{BuildSet: bs, Commits: []pipeline.ProjectCommit{
		{Project: last.Project, Branch: last.Branch, Commit: fmt.Sprintf("%040d", len(changes))}}}
}

// loadBuilds keeps every build running and counts the submitted ones.
type loadBuilds struct {
	submitted atomic.Int64
	results   chan pipeline.BuildResult
}

func (b *loadBuilds) Submit(context.Context, pipeline.Action) error {
	b.submitted.Add(1)
	return nil
}
func (b *loadBuilds) Cancel(context.Context, string) error { return nil }
func (b *loadBuilds) Adopt(_ context.Context, wanted map[string]bool) (argo.AdoptResult, error) {
	var r argo.AdoptResult
	for bs := range wanted {
		r.Adopted = append(r.Adopted, bs)
	}
	return r, nil
}
func (b *loadBuilds) Results() <-chan pipeline.BuildResult { return b.results }

func loadChange(project string, n int) pipeline.Change {
	return pipeline.Change{Project: project, Branch: "master", Number: n, Patchset: 1,
		Ref: fmt.Sprintf("refs/changes/%02d/%d/1", n%100, n), Commit: fmt.Sprintf("%040x", n),
		Subject: "Change " + strconv.Itoa(n), Owner: "alice", Status: pipeline.StatusNew,
		Approvals: []pipeline.Approval{{Label: "Code-Review", Value: 2, By: "bob"}}}
}

func loadApproval(c pipeline.Change) gerrit.StreamItem {
	return gerrit.StreamItem{Event: &gerrit.Event{
		Type:    "comment-added",
		Project: gerrit.Project(c.Project),
		Change:  &gerrit.Change{Project: gerrit.Project(c.Project), Branch: c.Branch, Number: gerrit.FlexInt(c.Number), Status: "NEW"},
		PatchSet: &gerrit.PatchSet{Number: 1, Revision: c.Commit, Ref: c.Ref,
			Approvals: []gerrit.Approval{{Type: "Code-Review", Value: 2}}},
		Author:    &gerrit.Account{Username: "bob"},
		Approvals: []gerrit.Approval{{Type: "Code-Review", Value: 2}},
		Comment:   "Patch Set 1: Code-Review+2",
	}}
}

// BenchmarkStatusUnderLoad measures, with 1,000 gate items queued (50
// projects × 20, each with a running workflow), the scheduler's turn
// latency — a new approval to its build submitted, which takes two turns,
// each publishing a new snapshot — without HTTP load ("idle") and while 8
// clients fetch GET /api/status over a socket as fast as they can
// ("loaded"). Each op is one approval. "loaded" also reports the status
// requests' p50/p99 and rate. Compare the two sub-benchmarks side by side.
func BenchmarkStatusUnderLoad(b *testing.B) {
	for _, loaded := range []bool{false, true} {
		name := "idle"
		if loaded {
			name = "loaded"
		}
		b.Run(name, func(b *testing.B) { benchStatusUnderLoad(b, loaded) })
	}
}

func benchStatusUnderLoad(b *testing.B, loaded bool) {
	const projects, perProject, clients = 50, 20, 8
	cfg := testConfig(b)
	eng, err := pipeline.NewEngine(&cfg.Config)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(filepath.Join(b.TempDir(), "seakeeper.db"), store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	g := &loadGerrit{changes: map[pipeline.ChangeKey]pipeline.Change{}}
	builds := &loadBuilds{results: make(chan pipeline.BuildResult)}
	metrics, err := NewMetrics(MetricsOptions{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	sched, err := scheduler.New(scheduler.Options{Engine: eng, Store: st, Gerrit: g, Merger: loadMerger{},
		Builds: builds, SettleDelay: -1, Observer: metrics})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Config: cfg, Snapshot: sched.Snapshot, History: st.History, Metrics: metrics})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	stream := make(chan gerrit.StreamItem)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx, stream) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	waitBuilds := func(n int64) {
		deadline := time.Now().Add(time.Minute)
		for builds.submitted.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d builds submitted, want %d", builds.submitted.Load(), n)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	n := 0
	for p := range projects {
		for range perProject {
			n++
			c := loadChange(fmt.Sprintf("org/p%02d", p), n)
			g.put(c)
			stream <- loadApproval(c)
		}
	}
	waitBuilds(int64(n))

	var reqs []time.Duration
	var reqMu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if loaded {
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				defer func() { reqMu.Lock(); reqs = append(reqs, mine...); reqMu.Unlock() }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					t0 := time.Now()
					resp, err := http.Get(ts.URL + "/api/status")
					if err != nil {
						b.Error(err)
						return
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Errorf("GET /api/status: %v %s", err, resp.Status)
						return
					}
					mine = append(mine, time.Since(t0))
				}
			}()
		}
	}

	lat := make([]time.Duration, 0, b.N)
	begin := time.Now()
	b.ResetTimer()
	for i := range b.N {
		c := loadChange("org/probe", 100000+i)
		g.put(c)
		t0 := time.Now()
		stream <- loadApproval(c)
		waitBuilds(int64(n + i + 1))
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	elapsed := time.Since(begin)
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "turn-p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "turn-p99-µs")
	if loaded {
		if len(reqs) == 0 {
			b.Fatal("no status request finished")
		}
		slices.Sort(reqs)
		b.ReportMetric(float64(reqs[len(reqs)/2].Microseconds()), "status-p50-µs")
		b.ReportMetric(float64(reqs[len(reqs)*99/100].Microseconds()), "status-p99-µs")
		b.ReportMetric(float64(len(reqs))/elapsed.Seconds(), "status-req/s")
	}
}
