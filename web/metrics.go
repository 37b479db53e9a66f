package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// MetricsOptions configure NewMetrics.
type MetricsOptions struct {
	// Config is the loaded main configuration (required): the managers
	// of the pipelines and the restricted projects, whose names never
	// appear in a label.
	Config *scheduler.Config
	// Clock is the time source (default the system clock).
	Clock clock.Clock
}

// Metrics is the daemon's Prometheus metrics, in a registry of its own
// (never the global one). It implements scheduler.Observer: pass it as
// ServeOptions.Observer, and its GerritResponse and KubernetesError
// methods as gerrit.ClientConfig.OnResponse and argo.Options.OnAPIError.
// It also tracks the Gerrit stream's connection for /readyz.
type Metrics struct {
	cfg   *scheduler.Config
	clock clock.Clock
	reg   *prometheus.Registry

	queueItems, queueActive, queueWindow *prometheus.GaugeVec
	pipelineItems, buildsRunning         *prometheus.GaugeVec
	streamConnected                      prometheus.Gauge

	enqueued, merged, failed, resets, applied *prometheus.CounterVec
	reconnects                                prometheus.Counter
	gerritErrors, kubeErrors                  *prometheus.CounterVec

	approvalToMerge, buildDuration *prometheus.HistogramVec
	intakeLag, commit, turn        prometheus.Histogram

	mu     sync.Mutex // the fields below; Turn's derivation state
	derive deriver
	stream streamState
}

// streamState is what the stream items said about the connection.
type streamState struct {
	connected bool
	ever      bool      // connected at least once
	since     time.Time // of the last change (or the first failure)
	lastErr   error
}

// Buckets of the histograms, in seconds.
var (
	// Approval to merge: a minute to two days.
	mergeBuckets = []float64{60, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400, 172800}
	// Build durations: 30 s to 6 h.
	buildBuckets = []float64{30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 21600}
	// Event intake lag: 10 ms to 10 min.
	lagBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600}
	// Store commit and turn durations: 100 µs to 10 s.
	turnBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}
)

// NewMetrics creates the metrics and registers them, with the Go runtime
// and process collectors, in a new registry.
func NewMetrics(o MetricsOptions) (*Metrics, error) {
	if o.Config == nil {
		return nil, errors.New("web: MetricsOptions.Config is required")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seakeeper_" + name, Help: help}, labels)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seakeeper_" + name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "seakeeper_" + name, Help: help, Buckets: buckets}, labels)
	}
	m := &Metrics{
		cfg: o.Config, clock: o.Clock, reg: prometheus.NewRegistry(),

		queueItems:    gauge("queue_items", "Items in a shared queue of a dependent pipeline.", "pipeline", "queue"),
		queueActive:   gauge("queue_active_items", "Items inside the window of a shared queue of a dependent pipeline.", "pipeline", "queue"),
		queueWindow:   gauge("queue_window", "Window of a shared queue of a dependent pipeline.", "pipeline", "queue"),
		pipelineItems: gauge("pipeline_items", "Items in all queues of a pipeline.", "pipeline"),
		buildsRunning: gauge("builds_running", "Workflows of a pipeline that have not finished.", "pipeline"),
		streamConnected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seakeeper_stream_connected",
			Help: "1 while the Gerrit event stream is connected, else 0."}),

		enqueued: counter("items_enqueued_total", "Items that entered a pipeline.", "pipeline"),
		merged:   counter("items_merged_total", "Items whose change Seakeeper merged (submit reported merged).", "pipeline"),
		failed:   counter("items_failed_total", "Items reported as failed, by outcome (failure, merge-conflict, config-error).", "pipeline", "outcome"),
		resets:   counter("gate_resets_total", "Buildsets of a dependent pipeline re-prepared after the changes ahead changed.", "pipeline"),
		applied:  counter("events_applied_total", "Events applied to the pipeline state, by kind.", "kind"),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "seakeeper_stream_reconnects_total",
			Help: "Reconnections of the Gerrit event stream after its first connection."}),
		gerritErrors: counter("gerrit_api_errors_total", "Failed Gerrit REST attempts, by class (transport, 429, 4xx, 5xx).", "class"),
		kubeErrors:   counter("kubernetes_api_errors_total", "Failed Kubernetes API calls, by operation and API status reason (transport: no answer).", "op", "reason"),

		approvalToMerge: histogram("approval_to_merge_seconds", "Time from an item's enqueue to the merge of its change.", mergeBuckets, "pipeline"),
		buildDuration:   histogram("build_duration_seconds", "Workflow run time, by final phase.", buildBuckets, "pipeline", "phase"),
		intakeLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seakeeper_event_intake_lag_seconds",
			Help: "Time from Gerrit's eventCreatedOn to the event's intake.", Buckets: lagBuckets}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seakeeper_store_commit_seconds",
			Help: "Duration of the store transaction of a scheduler turn.", Buckets: turnBuckets}),
		turn: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seakeeper_turn_duration_seconds",
			Help: "Duration of a scheduler turn: re-reads, apply and commit.", Buckets: turnBuckets}),
	}
	m.derive = deriver{cfg: &o.Config.Config, restricted: o.Config.Restricted}
	cs := []prometheus.Collector{
		m.queueItems, m.queueActive, m.queueWindow, m.pipelineItems, m.buildsRunning, m.streamConnected,
		m.enqueued, m.merged, m.failed, m.resets, m.applied, m.reconnects, m.gerritErrors, m.kubeErrors,
		m.approvalToMerge, m.buildDuration, m.intakeLag, m.commit, m.turn,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("web: registering metrics: %w", err)
		}
	}
	for _, p := range o.Config.Pipelines {
		m.pipelineItems.WithLabelValues(p.Name)
		m.buildsRunning.WithLabelValues(p.Name)
		m.enqueued.WithLabelValues(p.Name)
		m.merged.WithLabelValues(p.Name)
		if p.Manager == pipeline.Dependent {
			m.resets.WithLabelValues(p.Name)
		}
	}
	return m, nil
}

var _ scheduler.Observer = (*Metrics)(nil)

// Registry returns the metrics' own registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// StreamItem implements scheduler.Observer: intake lag, reconnects and
// the connection state.
func (m *Metrics) StreamItem(it gerrit.StreamItem, lag time.Duration) {
	if it.Event != nil && lag > 0 {
		m.intakeLag.Observe(lag.Seconds())
	}
	var lineErr *gerrit.LineError
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &m.stream
	switch {
	case it.Connected():
		if s.ever {
			m.reconnects.Inc()
		}
		s.connected, s.ever, s.since, s.lastErr = true, true, m.clock.Now(), nil
		m.streamConnected.Set(1)
	case it.Err != nil && !errors.As(it.Err, &lineErr):
		// Any other error means a connection failed or was lost.
		if s.connected || s.since.IsZero() {
			s.since = m.clock.Now()
		}
		s.connected, s.lastErr = false, it.Err
		m.streamConnected.Set(0)
	}
}

// streamReady says whether the stream is connected, or was within grace.
func (m *Metrics) streamReady(now time.Time, grace time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stream
	switch {
	case s.connected:
		return nil
	case !s.ever:
		if s.lastErr != nil {
			return fmt.Errorf("not connected yet: %v", s.lastErr)
		}
		return errors.New("not connected yet")
	case now.Sub(s.since) <= grace:
		return nil
	}
	return fmt.Errorf("disconnected since %s (%s, grace %s): %v", s.since.UTC().Format(time.RFC3339),
		now.Sub(s.since).Round(time.Second), grace, s.lastErr)
}

// Turn implements scheduler.Observer: durations, the counters derived
// from the events applied and the actions emitted, and the queue gauges.
func (m *Metrics) Turn(t scheduler.TurnStats) {
	m.commit.Observe(t.Commit.Seconds())
	m.turn.Observe(t.Total.Seconds())
	m.mu.Lock()
	d := m.derive.turn(t)
	m.mu.Unlock()
	for _, k := range d.applied {
		m.applied.WithLabelValues(k).Inc()
	}
	for _, p := range d.enqueued {
		m.enqueued.WithLabelValues(p).Inc()
	}
	for _, mg := range d.merged {
		m.merged.WithLabelValues(mg.pipeline).Inc()
		if mg.wait >= 0 {
			m.approvalToMerge.WithLabelValues(mg.pipeline).Observe(mg.wait.Seconds())
		}
	}
	for _, f := range d.failed {
		m.failed.WithLabelValues(f[0], f[1]).Inc()
	}
	for _, p := range d.resets {
		m.resets.WithLabelValues(p).Inc()
	}
	for _, b := range d.builds {
		m.buildDuration.WithLabelValues(b.pipeline, b.phase).Observe(b.d.Seconds())
	}
	if t.State == nil {
		return
	}
	m.queueItems.Reset()
	m.queueActive.Reset()
	m.queueWindow.Reset()
	for _, q := range d.queues {
		m.queueItems.WithLabelValues(q.pipeline, q.name).Set(float64(q.items))
		m.queueActive.WithLabelValues(q.pipeline, q.name).Set(float64(q.active))
		m.queueWindow.WithLabelValues(q.pipeline, q.name).Set(float64(q.window))
	}
	for p, n := range d.pipelineItems {
		m.pipelineItems.WithLabelValues(p).Set(float64(n))
	}
	for p, n := range d.running {
		m.buildsRunning.WithLabelValues(p).Set(float64(n))
	}
}

// GerritResponse counts failed Gerrit REST attempts; pass it as
// gerrit.ClientConfig.OnResponse.
func (m *Metrics) GerritResponse(status int, err error) {
	var class string
	switch {
	case err != nil:
		class = "transport"
	case status == http.StatusTooManyRequests:
		class = "429"
	case status >= 500:
		class = "5xx"
	case status >= 400:
		class = "4xx"
	default:
		return
	}
	m.gerritErrors.WithLabelValues(class).Inc()
}

// KubernetesError counts a failed Kubernetes API call; pass it as
// argo.Options.OnAPIError. The reason label is the API status reason
// (NotFound, Forbidden, ...) or "transport" when no answer came.
func (m *Metrics) KubernetesError(op string, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	reason := string(apierrors.ReasonForError(err))
	if reason == "" {
		reason = "transport"
	}
	m.kubeErrors.WithLabelValues(op, reason).Inc()
}

// kubernetesCheckFailed counts a failed readiness check of the API.
func (m *Metrics) kubernetesCheckFailed(err error) { m.KubernetesError("readiness check", err) }
