package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// readyHarness is a server whose readiness inputs the test controls.
type readyHarness struct {
	*harness
	storeErr  error
	leader    atomic.Bool
	kubeErr   atomic.Pointer[error]
	kubeCalls atomic.Int32
}

func newReadyHarness(t *testing.T) *readyHarness {
	r := &readyHarness{}
	r.leader.Store(true)
	r.harness = newHarness(t, newWorld(t), func(o *Options) {
		o.Store = func() error { return r.storeErr }
		o.IsLeader = r.leader.Load
		o.Kubernetes = func(ctx context.Context) error {
			r.kubeCalls.Add(1)
			if p := r.kubeErr.Load(); p != nil {
				return *p
			}
			return nil
		}
		o.StreamGrace = time.Minute
		o.KubernetesInterval = 30 * time.Second
	})
	return r
}

func (r *readyHarness) connect() {
	r.metrics.StreamItem(gerrit.StreamItem{Resync: gerrit.ResyncConnected, At: r.clock.Now()}, 0)
}

func (r *readyHarness) ready(t *testing.T) (int, string) {
	t.Helper()
	rec := r.get("/readyz")
	return rec.Code, rec.Body.String()
}

func TestReadyWhenEveryCheckPasses(t *testing.T) {
	r := newReadyHarness(t)
	r.connect()
	code, body := r.ready(t)
	want := "ok store\nok snapshot\nok leader\nok gerrit-stream\nok kubernetes\n"
	if code != http.StatusOK || body != want {
		t.Errorf("/readyz: %d\n%s\nwant 200\n%s", code, body, want)
	}
	if rec := r.get("/healthz"); rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Errorf("/healthz: %d %q", rec.Code, rec.Body)
	}
}

func TestReadyzNamesTheCheckThatFailed(t *testing.T) {
	for _, c := range []struct {
		name    string
		breakIt func(*readyHarness)
		want    string
	}{
		{"store", func(r *readyHarness) { r.storeErr = errors.New("database not open") }, "FAIL store: database not open"},
		{"snapshot", func(r *readyHarness) { r.snaps.set(nil) }, "FAIL snapshot: the scheduler has not loaded its state yet; try again in a moment"},
		{"leader", func(r *readyHarness) { r.leader.Store(false) }, "FAIL leader: this instance is not the leader"},
		{"kubernetes", func(r *readyHarness) {
			err := errors.New("connection refused")
			r.kubeErr.Store(&err)
		}, "FAIL kubernetes: the Kubernetes API did not answer: connection refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newReadyHarness(t)
			r.connect()
			c.breakIt(r)
			code, body := r.ready(t)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, c.want+"\n") {
				t.Errorf("/readyz: %d\n%s\nwant 503 with %q", code, body, c.want)
			}
			if strings.Count(body, "FAIL") != 1 {
				t.Errorf("only %s is broken, yet:\n%s", c.name, body)
			}
		})
	}
}

func TestReadyzFollowsTheGerritStream(t *testing.T) {
	r := newReadyHarness(t)
	code, body := r.ready(t)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "FAIL gerrit-stream: not connected yet\n") {
		t.Fatalf("before the first connection: %d\n%s", code, body)
	}
	r.metrics.StreamItem(gerrit.StreamItem{Err: fmt.Errorf("gerrit ssh: %w", errors.New("auth failed"))}, 0)
	if _, body := r.ready(t); !strings.Contains(body, "FAIL gerrit-stream: not connected yet: gerrit ssh: auth failed") {
		t.Errorf("after a failed first attempt:\n%s", body)
	}
	r.connect()
	if code, _ := r.ready(t); code != http.StatusOK {
		t.Fatalf("connected: %d", code)
	}
	// A malformed line is not a disconnect.
	r.metrics.StreamItem(gerrit.StreamItem{Err: &gerrit.LineError{Line: 3, Err: errors.New("bad json")}}, 0)
	r.clock.set(r.clock.Now().Add(time.Hour))
	if code, body := r.ready(t); code != http.StatusOK {
		t.Fatalf("after a malformed line: %d\n%s", code, body)
	}
	lost := r.clock.Now()
	r.metrics.StreamItem(gerrit.StreamItem{Err: gerrit.ErrKeepaliveTimeout}, 0)
	r.clock.set(lost.Add(time.Minute))
	if code, body := r.ready(t); code != http.StatusOK {
		t.Errorf("disconnected for the grace period exactly: %d\n%s", code, body)
	}
	r.clock.set(lost.Add(time.Minute + time.Second))
	code, body = r.ready(t)
	want := fmt.Sprintf("FAIL gerrit-stream: disconnected since %s (1m1s, grace 1m0s): %v\n", lost.UTC().Format(time.RFC3339), gerrit.ErrKeepaliveTimeout)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
		t.Errorf("past the grace period: %d\n%s\nwant %q", code, body, want)
	}
	r.connect()
	if code, _ := r.ready(t); code != http.StatusOK {
		t.Errorf("reconnected: %d", code)
	}
}

func TestKubernetesCheckIsCached(t *testing.T) {
	r := newReadyHarness(t)
	r.connect()
	for i := 0; i < 5; i++ {
		r.ready(t)
	}
	if n := r.kubeCalls.Load(); n != 1 {
		t.Fatalf("5 readiness probes within the interval called the Kubernetes API %d times, want 1", n)
	}
	err := errors.New("timeout")
	r.kubeErr.Store(&err)
	if code, _ := r.ready(t); code != http.StatusOK {
		t.Errorf("the cached success must stand until the interval passed: %d", code)
	}
	r.clock.set(r.clock.Now().Add(30 * time.Second))
	if code, body := r.ready(t); code != http.StatusServiceUnavailable || !strings.Contains(body, "FAIL kubernetes") {
		t.Errorf("after the interval, a failing API: %d\n%s", code, body)
	}
	if n := r.kubeCalls.Load(); n != 2 {
		t.Errorf("calls %d, want 2", n)
	}
	if v := scrape(t, r.harness)[`seakeeper_kubernetes_api_errors_total{op="readiness check",reason="transport"}`]; v != 1 {
		t.Errorf("failed readiness checks counted %v, want 1", v)
	}
}

func TestUnconfiguredChecksAreSaidSkipped(t *testing.T) {
	h := newHarness(t, newWorld(t))
	h.metrics.StreamItem(gerrit.StreamItem{Resync: gerrit.ResyncConnected}, 0)
	rec := h.get("/readyz")
	want := "skip store: not configured\nok snapshot\nok leader\nok gerrit-stream\nskip kubernetes: not configured\n"
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("/readyz: %d\n%s\nwant\n%s", rec.Code, rec.Body, want)
	}
}
