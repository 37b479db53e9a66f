package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/internal/clock"
)

// serveReady answers /readyz: 200 when every check passes, 503 otherwise;
// the body has one line per check, "ok <name>" or "FAIL <name>: <why>"
// (and "skip <name>" for a check the options did not configure).
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	type result struct {
		name string
		err  error
		skip bool
	}
	var rs []result
	add := func(name string, err error) { rs = append(rs, result{name: name, err: err}) }

	if s.o.Store == nil {
		rs = append(rs, result{name: "store", skip: true})
	} else {
		add("store", s.o.Store())
	}
	if s.o.Snapshot() == nil {
		add("snapshot", errNotLoaded)
	} else {
		add("snapshot", nil)
	}
	if s.o.IsLeader() {
		add("leader", nil)
	} else {
		add("leader", fmt.Errorf("this instance is not the leader"))
	}
	add("gerrit-stream", s.o.Metrics.streamReady(s.o.Clock.Now(), s.o.StreamGrace))
	if s.kube == nil {
		rs = append(rs, result{name: "kubernetes", skip: true})
	} else {
		add("kubernetes", s.kube.result(r.Context()))
	}

	var b strings.Builder
	code := http.StatusOK
	for _, r := range rs {
		switch {
		case r.skip:
			fmt.Fprintf(&b, "skip %s: not configured\n", r.name)
		case r.err != nil:
			code = http.StatusServiceUnavailable
			fmt.Fprintf(&b, "FAIL %s: %v\n", r.name, r.err)
		default:
			fmt.Fprintf(&b, "ok %s\n", r.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// kubeCheck caches the result of the Kubernetes check: it runs at most
// once per interval, and concurrent readers of a stale result wait for
// the one check under way instead of starting their own.
type kubeCheck struct {
	check    func(ctx context.Context) error
	clock    clock.Clock
	interval time.Duration
	timeout  time.Duration
	failed   func(err error)

	mu   sync.Mutex
	err  error
	at   time.Time
	done bool
}

func (k *kubeCheck) result(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.clock.Now()
	if k.done && now.Sub(k.at) < k.interval {
		return k.err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.timeout)
	err := k.check(cctx)
	cancel()
	if err != nil {
		err = fmt.Errorf("the Kubernetes API did not answer: %w", err)
		if k.failed != nil {
			k.failed(err)
		}
	}
	k.err, k.at, k.done = err, now, true
	return err
}
