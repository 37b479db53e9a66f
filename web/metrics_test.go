package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// scrape reads /metrics through the server and returns every sample by
// its series ("name{labels}" as printed).
func scrape(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	rec := h.get("/metrics")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return parseMetrics(t, rec.Body.String())
}

func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func wantSamples(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for series, v := range want {
		g, ok := got[series]
		if !ok {
			t.Errorf("no series %s", series)
		} else if g != v {
			t.Errorf("%s = %v, want %v", series, g, v)
		}
	}
}

func TestMetricsFollowARealGateRun(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w)
	w.onTurn = h.metrics.Turn
	w.change("org/a", 1001, "A")
	w.change("org/b", 1002, "B")
	w.change("org/a", 1004, "C")
	w.change("secret/tool", 2001, "restricted, own queue")
	w.change("org/a", 1010, "checked")
	for _, n := range []int{1001, 1002, 1004, 2001} {
		w.approve(n)
	}
	w.recheck(1010)
	w.settle()

	mid := scrape(t, h)
	wantSamples(t, mid, map[string]float64{
		`seakeeper_items_enqueued_total{pipeline="gate"}`:                         4,
		`seakeeper_items_enqueued_total{pipeline="check"}`:                        1,
		`seakeeper_queue_items{pipeline="gate",queue="integrated@master"}`:        3,
		`seakeeper_queue_active_items{pipeline="gate",queue="integrated@master"}`: 3,
		`seakeeper_queue_window{pipeline="gate",queue="integrated@master"}`:       float64(pipeline.DefaultWindow),
		`seakeeper_queue_items{pipeline="gate",queue="(restricted)"}`:             1,
		`seakeeper_pipeline_items{pipeline="gate"}`:                               4,
		`seakeeper_pipeline_items{pipeline="check"}`:                              1,
		`seakeeper_builds_running{pipeline="gate"}`:                               4,
		`seakeeper_builds_running{pipeline="check"}`:                              1,
		`seakeeper_gate_resets_total{pipeline="gate"}`:                            0,
		`seakeeper_items_merged_total{pipeline="gate"}`:                           0,
	})
	if _, ok := mid[`seakeeper_items_failed_total{outcome="failure",pipeline="gate"}`]; ok {
		t.Error("a failure counted before any build failed")
	}

	enqA, enqC := w.item("gate", 1001).EnqueuedAt, w.item("gate", 1004).EnqueuedAt
	startB := w.item("gate", 1002).BuildSet.Build.StartedAt
	w.finish(90*time.Second, "gate", 1002, pipeline.PhaseFailed) // C is reset
	endB := w.now                                                // the result's finishedAt
	if w.item("gate", 1004).BuildSet.ID != "gate-3.2" {
		t.Fatalf("the scenario expects C's second buildset, got %s", w.item("gate", 1004).BuildSet.ID)
	}
	w.settle()
	startA := w.item("gate", 1001).BuildSet.Build.StartedAt
	w.finish(10*time.Minute, "gate", 1001, pipeline.PhaseSucceeded)
	endA := w.now
	w.submits(false) // A: the submit's answer, then change-merged
	mergeA := w.now.Add(-time.Second)
	startC := w.item("gate", 1004).BuildSet.Build.StartedAt
	w.finish(time.Minute, "gate", 1004, pipeline.PhaseSucceeded)
	endC := w.now
	w.submits(true) // C: change-merged overtakes the answer
	mergeC := w.now.Add(-time.Second)
	for _, it := range w.st.Pipeline("gate").Items() {
		if it.Change.Project != "secret/tool" {
			t.Fatalf("item %s (%d) still queued", it.ID, it.Change.Number)
		}
	}

	got := scrape(t, h)
	wantSamples(t, got, map[string]float64{
		`seakeeper_items_enqueued_total{pipeline="gate"}`:                           4,
		`seakeeper_items_merged_total{pipeline="gate"}`:                             2,
		`seakeeper_items_failed_total{outcome="failure",pipeline="gate"}`:           1,
		`seakeeper_gate_resets_total{pipeline="gate"}`:                              1,
		`seakeeper_approval_to_merge_seconds_count{pipeline="gate"}`:                2,
		`seakeeper_approval_to_merge_seconds_sum{pipeline="gate"}`:                  mergeA.Sub(enqA).Seconds() + mergeC.Sub(enqC).Seconds(),
		`seakeeper_build_duration_seconds_count{phase="Failed",pipeline="gate"}`:    1,
		`seakeeper_build_duration_seconds_sum{phase="Failed",pipeline="gate"}`:      endB.Sub(startB).Seconds(),
		`seakeeper_build_duration_seconds_count{phase="Succeeded",pipeline="gate"}`: 2,
		`seakeeper_build_duration_seconds_sum{phase="Succeeded",pipeline="gate"}`:   endA.Sub(startA).Seconds() + endC.Sub(startC).Seconds(),
		`seakeeper_queue_items{pipeline="gate",queue="(restricted)"}`:               1,
		`seakeeper_pipeline_items{pipeline="gate"}`:                                 1,
		`seakeeper_builds_running{pipeline="gate"}`:                                 1,
		`seakeeper_store_commit_seconds_count`:                                      float64(w.turn),
		`seakeeper_turn_duration_seconds_count`:                                     float64(w.turn),
		`seakeeper_events_applied_total{kind="report"}`:                             2,
	})
	// The shared queue drained; the state keeps it, with its window grown
	// by the two merges and halved by B's failure.
	q := w.st.Pipeline("gate").Queues[0]
	if q.Name != "integrated@master" || len(q.Items) != 0 {
		t.Fatalf("first gate queue %s with %d items", q.Name, len(q.Items))
	}
	wantSamples(t, got, map[string]float64{
		`seakeeper_queue_items{pipeline="gate",queue="integrated@master"}`:  0,
		`seakeeper_queue_window{pipeline="gate",queue="integrated@master"}`: float64(q.Window),
	})
	if body := h.get("/metrics").Body.String(); strings.Contains(body, "secret/tool") {
		t.Error("a restricted project's name is in a metric label")
	}
}

func TestMetricsOfTheStream(t *testing.T) {
	h := newHarness(t, newWorld(t))
	m := h.metrics
	m.StreamItem(gerrit.StreamItem{Resync: gerrit.ResyncConnected}, 0)
	m.StreamItem(gerrit.StreamItem{Event: &gerrit.Event{Type: "comment-added"}}, 1500*time.Millisecond)
	m.StreamItem(gerrit.StreamItem{Event: &gerrit.Event{Type: "comment-added"}}, 0) // Gerrit did not say
	m.StreamItem(gerrit.StreamItem{Err: gerrit.ErrKeepaliveTimeout}, 0)
	mid := scrape(t, h)
	wantSamples(t, mid, map[string]float64{
		`seakeeper_stream_connected`:                          0,
		`seakeeper_stream_reconnects_total`:                   0,
		`seakeeper_event_intake_lag_seconds_count`:            1,
		`seakeeper_event_intake_lag_seconds_sum`:              1.5,
		`seakeeper_event_intake_lag_seconds_bucket{le="1"}`:   0,
		`seakeeper_event_intake_lag_seconds_bucket{le="2.5"}`: 1,
	})
	m.StreamItem(gerrit.StreamItem{Resync: gerrit.ResyncConnected}, 0)
	m.StreamItem(gerrit.StreamItem{Resync: gerrit.ResyncDroppedOutput}, 0)
	wantSamples(t, scrape(t, h), map[string]float64{
		`seakeeper_stream_connected`:        1,
		`seakeeper_stream_reconnects_total`: 1,
	})
}

func TestGerritAPIErrorsAreCountedThroughTheClientHook(t *testing.T) {
	h := newHarness(t, newWorld(t))
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		default:
			http.Error(w, "Not found: p", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := gerrit.NewClient(gerrit.ClientConfig{URL: srv.URL + "/", User: "seakeeper", PasswordFile: pw,
		RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond, OnResponse: h.metrics.GerritResponse})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ProjectConfigFile(context.Background(), "p", "seakeeper.yaml"); err == nil {
		t.Fatal("a 404 read succeeded")
	}
	// A refused connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dead, err := gerrit.NewClient(gerrit.ClientConfig{URL: "http://" + addr + "/", User: "seakeeper", PasswordFile: pw,
		RetryMax: -1, OnResponse: h.metrics.GerritResponse})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dead.ProjectConfigFile(context.Background(), "p", "seakeeper.yaml"); err == nil {
		t.Fatal("a read from a closed port succeeded")
	}
	wantSamples(t, scrape(t, h), map[string]float64{
		`seakeeper_gerrit_api_errors_total{class="5xx"}`:       1,
		`seakeeper_gerrit_api_errors_total{class="4xx"}`:       1,
		`seakeeper_gerrit_api_errors_total{class="transport"}`: 1,
	})
}

// configFile is an argo.ConfigSource with one seakeeper.yaml for every
// project.
type configFile string

func (c configFile) ConfigFile(context.Context, string, string) ([]byte, string, error) {
	return []byte(c), "sha", nil
}

func TestKubernetesAPIErrorsAreCountedThroughTheAdapterHook(t *testing.T) {
	h := newHarness(t, newWorld(t))
	cs := fake.NewSimpleClientset()
	cs.PrependReactor("create", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "argoproj.io", Resource: "workflows"}, "x", errors.New("quota"))
	})
	a, err := argo.New(argo.Options{
		Client:     cs,
		Configs:    argo.NewConfigCache(configFile("workflowTemplateRef: {name: ci}\n"), argo.ConfigCacheOptions{}),
		Render:     argo.RenderOptions{InternalURL: "http://seakeeper.internal:8081/"},
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnAPIError: h.metrics.KubernetesError,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	spec := pipeline.Spec{Project: "org/app", Branch: "main", Number: 7, Patchset: 1, Ref: "refs/changes/07/7/1", Commit: "c0ffee"}
	act := pipeline.Action{ID: "build/gate-1.1", Kind: pipeline.ActBuild, Pipeline: "gate", Queue: "q", Item: "gate-1",
		BuildSet: "gate-1.1", Change: spec, Changes: []pipeline.Spec{spec},
		Commits: []pipeline.ProjectCommit{{Project: "org/app", Branch: "main", Commit: "5bec"}}}
	if err := a.Submit(ctx, act); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-a.Results():
		if r.Phase != pipeline.PhaseError || !strings.Contains(r.Message, "quota") {
			t.Errorf("result %+v, want the refusal", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no build result after the refused create")
	}
	h.metrics.KubernetesError("delete workflow", context.Canceled) // shutdown is no API error
	h.metrics.KubernetesError("delete workflow", fmt.Errorf("dial: %w", errors.New("connection refused")))
	got := scrape(t, h)
	wantSamples(t, got, map[string]float64{
		`seakeeper_kubernetes_api_errors_total{op="create workflow",reason="Forbidden"}`: 1,
		`seakeeper_kubernetes_api_errors_total{op="delete workflow",reason="transport"}`: 1,
	})
}

func TestMetricsRegistryIsNotTheGlobalOne(t *testing.T) {
	w := newWorld(t)
	a, err := NewMetrics(MetricsOptions{Config: w.cfg})
	if err != nil {
		t.Fatal(err)
	}
	// A second set registers without a duplicate-registration error.
	b, err := NewMetrics(MetricsOptions{Config: w.cfg})
	if err != nil {
		t.Fatalf("a second Metrics: %v", err)
	}
	a.GerritResponse(502, nil)
	rec := httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if strings.Contains(rec.Body.String(), `seakeeper_gerrit_api_errors_total{class="5xx"} 1`) {
		t.Error("metrics of one instance show in another's registry")
	}
}
