package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/scheduler"
	"github.com/seakeeper-ci/seakeeper/store"
)

// Options configure New. Config, Snapshot and Metrics are required.
type Options struct {
	// Config is the loaded main configuration: its pipelines, restricted
	// projects and Gerrit URL (for links to changes).
	Config *scheduler.Config
	// Snapshot returns the scheduler's last published snapshot, or nil
	// before the store is loaded (scheduler.(*Scheduler).Snapshot).
	Snapshot func() *scheduler.Snapshot
	// History returns finished items, newest first, for build time
	// estimates (store.(*Store).History). Nil: every estimate is
	// DefaultEstimate.
	History func(pipeline, project string, limit int) ([]store.HistoryEntry, error)
	// Store checks that the store is open and readable, for /readyz (a
	// cheap read such as store.(*Store).Info). Nil: not checked.
	Store func() error
	// IsLeader reports whether this instance acts (nil: always).
	IsLeader func() bool
	// Kubernetes checks that the Kubernetes API answers, for /readyz.
	// It is called at most once per KubernetesInterval. Nil: not checked.
	Kubernetes func(ctx context.Context) error
	// Metrics is the daemon's Observer; the server serves it at /metrics
	// and reads the Gerrit stream's state from it for /readyz.
	Metrics *Metrics
	// Clock is the time source (default the system clock).
	Clock clock.Clock
	// Logger receives the server's warnings (default slog.Default()).
	Logger *slog.Logger

	// Refresh is how often the page refreshes from /api/status (default
	// DefaultRefresh).
	Refresh time.Duration
	// DefaultEstimate and EstimateTTL tune build time estimates (defaults
	// DefaultEstimate and DefaultEstimateTTL).
	DefaultEstimate, EstimateTTL time.Duration
	// StreamGrace is how long the Gerrit stream may be disconnected
	// before /readyz fails (default DefaultStreamGrace).
	StreamGrace time.Duration
	// KubernetesInterval is how long a Kubernetes check result is reused
	// (default DefaultKubernetesInterval); KubernetesTimeout bounds one
	// check (default DefaultKubernetesTimeout).
	KubernetesInterval, KubernetesTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultRefresh            = 5 * time.Second
	DefaultStreamGrace        = 2 * time.Minute
	DefaultKubernetesInterval = 30 * time.Second
	DefaultKubernetesTimeout  = 5 * time.Second
)

// Server is the public HTTP handler: status page, status API, metrics and
// health. It only reads; it is safe for concurrent use.
type Server struct {
	o    Options
	mux  *http.ServeMux
	est  *estimator
	kube *kubeCheck

	mu     sync.Mutex
	turn   uint64
	view   *view
	status cachedBody // /api/status for (turn, second)
	page   cachedBody // / for (turn, second, query)
}

// cachedBody is a response body computed for one key, and its gzip
// compression once a client asked for it.
type cachedBody struct {
	key  string
	body []byte
	gz   []byte
}

// gzipped returns the compressed body, compressing it the first time.
// s.mu is held.
func (c *cachedBody) gzipped() []byte {
	if c.gz == nil {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // a valid level: no error
		_, _ = zw.Write(c.body)                          // writes to memory do not fail
		_ = zw.Close()
		c.gz = b.Bytes()
	}
	return c.gz
}

// acceptsGzip reports whether the client takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// New checks the options and returns the server.
func New(o Options) (*Server, error) {
	var missing []string
	if o.Config == nil {
		missing = append(missing, "Config")
	}
	if o.Snapshot == nil {
		missing = append(missing, "Snapshot")
	}
	if o.Metrics == nil {
		missing = append(missing, "Metrics")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("web: required Options missing: %s", strings.Join(missing, ", "))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Refresh", o.Refresh}, {"DefaultEstimate", o.DefaultEstimate}, {"EstimateTTL", o.EstimateTTL},
		{"StreamGrace", o.StreamGrace}, {"KubernetesInterval", o.KubernetesInterval}, {"KubernetesTimeout", o.KubernetesTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("web: Options.%s is negative (%v); leave it 0 for the default", d.name, d.v)
		}
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.IsLeader == nil {
		o.IsLeader = func() bool { return true }
	}
	o.Refresh = orDefault(o.Refresh, DefaultRefresh)
	o.DefaultEstimate = orDefault(o.DefaultEstimate, DefaultEstimate)
	o.EstimateTTL = orDefault(o.EstimateTTL, DefaultEstimateTTL)
	o.StreamGrace = orDefault(o.StreamGrace, DefaultStreamGrace)
	o.KubernetesInterval = orDefault(o.KubernetesInterval, DefaultKubernetesInterval)
	o.KubernetesTimeout = orDefault(o.KubernetesTimeout, DefaultKubernetesTimeout)

	s := &Server{
		o:   o,
		est: &estimator{history: o.History, clock: o.Clock, ttl: o.EstimateTTL, def: o.DefaultEstimate, log: o.Logger},
	}
	if o.Kubernetes != nil {
		s.kube = &kubeCheck{check: o.Kubernetes, clock: o.Clock, interval: o.KubernetesInterval,
			timeout: o.KubernetesTimeout, failed: o.Metrics.kubernetesCheckFailed}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /api/status", s.serveStatus)
	mux.HandleFunc("GET /api/changes/{number}", s.serveChange)
	mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s; see /api/status and /api/changes/<number>", r.URL.Path))
	})
	mux.Handle("GET /metrics", o.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux = mux
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// ServeHTTP serves the routes; every method but GET and HEAD is refused
// with 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeJSONError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s: the status API is read-only", r.Method, r.URL.Path))
			return
		}
		http.Error(w, fmt.Sprintf("method %s not allowed: this server is read-only", r.Method), http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	s.mux.ServeHTTP(w, r)
}

// current returns the view of the latest snapshot, stamped for now; nil
// before the scheduler published one. s.mu is held.
func (s *Server) current(now time.Time) (*view, error) {
	snap := s.o.Snapshot()
	if snap == nil || snap.State == nil {
		return nil, nil
	}
	if s.view == nil || s.turn != snap.Turn {
		v, err := buildView(viewConfig{cfg: s.o.Config, gerritURL: s.o.Config.Gerrit.URL, estimate: s.est.estimate}, snap)
		if err != nil {
			return nil, fmt.Errorf("encoding the status of turn %d: %w", snap.Turn, err)
		}
		s.view, s.turn = v, snap.Turn
	}
	s.view.stamp(now)
	return s.view, nil
}

// errNotLoaded is the answer before the first snapshot.
var errNotLoaded = errors.New("the scheduler has not loaded its state yet; try again in a moment")

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	now := s.o.Clock.Now()
	s.mu.Lock()
	v, err := s.current(now)
	if v == nil {
		s.mu.Unlock()
		s.unavailable(w, err)
		return
	}
	key := fmt.Sprintf("%d/%d", s.turn, v.stamped)
	if s.status.key != key {
		body := appendStatus(make([]byte, 0, v.size+64), v.parts, v.status.Now)
		s.status = cachedBody{key: key, body: body}
	}
	body := s.status.body
	gz := acceptsGzip(r)
	if gz {
		body = s.status.gzipped()
	}
	s.mu.Unlock()
	w.Header().Set("Vary", "Accept-Encoding")
	if gz {
		w.Header().Set("Content-Encoding", "gzip")
	}
	writeBody(w, "application/json", body)
}

// unavailable answers an API request that has no view: not loaded yet,
// or err.
func (s *Server) unavailable(w http.ResponseWriter, err error) {
	if err != nil {
		s.o.Logger.Error("status page", "err", err)
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSONError(w, http.StatusServiceUnavailable, errNotLoaded.Error())
}

func (s *Server) serveChange(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("number")
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("change number %q in %s is not a positive integer", raw, r.URL.Path))
		return
	}
	now := s.o.Clock.Now()
	s.mu.Lock()
	v, err := s.current(now)
	if v == nil {
		s.mu.Unlock()
		s.unavailable(w, err)
		return
	}
	items := v.byNumber[n]
	if len(items) == 0 {
		s.mu.Unlock()
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("change %d is in no queue", n))
		return
	}
	// ChangeItems, encoded as the status is.
	body := append([]byte(`{"number":`), strconv.Itoa(n)...)
	body = append(body, `,"now":`...)
	body = appendTime(body, v.status.Now)
	body = append(body, `,"items":[`...)
	for i, it := range items {
		if i > 0 {
			body = append(body, ',')
		}
		body = it.appendJSON(body)
	}
	s.mu.Unlock()
	writeBody(w, "application/json", append(body, "]}\n"...))
}

func writeBody(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(apiError{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}
