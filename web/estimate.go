package web

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/store"
)

// Defaults of the build time estimates.
const (
	// DefaultEstimate is the estimated build time of a pipeline and
	// project without successful builds in the history.
	DefaultEstimate = 10 * time.Minute
	// DefaultEstimateTTL is how long an estimate is reused before the
	// history is read again.
	DefaultEstimateTTL = 5 * time.Minute
	// estimateSample is how many recent history entries an estimate
	// reads; estimateBuilds how many successful builds it uses at most.
	estimateSample = 50
	estimateBuilds = 20
)

// estimator estimates build times from the store's history: the median
// duration (finishedAt - startedAt) of the most recent successful builds
// of a pipeline and project. Estimates are cached for a TTL, so that the
// history is read at most once per pipeline and project per TTL, never
// per request.
type estimator struct {
	history func(pipeline, project string, limit int) ([]store.HistoryEntry, error)
	clock   clock.Clock
	ttl     time.Duration
	def     time.Duration
	log     *slog.Logger

	mu    sync.Mutex
	cache map[[2]string]cachedEstimate
}

type cachedEstimate struct {
	d  time.Duration
	at time.Time
}

func (e *estimator) estimate(pipelineName, project string) time.Duration {
	if e.history == nil {
		return e.def
	}
	now := e.clock.Now()
	k := [2]string{pipelineName, project}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.cache[k]; ok && now.Sub(c.at) < e.ttl {
		return c.d
	}
	d := e.def
	hs, err := e.history(pipelineName, project, estimateSample)
	if err != nil {
		// Keep the default for a TTL: a failing store is not read per
		// item and request.
		e.log.Warn("status page: history unreadable; using the default estimate",
			"pipeline", pipelineName, "project", project, "err", err)
	} else if m, ok := medianBuild(hs); ok {
		d = m
	}
	if e.cache == nil {
		e.cache = map[[2]string]cachedEstimate{}
	}
	e.cache[k] = cachedEstimate{d: d, at: now}
	return d
}

// medianBuild is the median build duration of the newest successful
// entries of hs (newest first) that say when their build started and
// finished.
func medianBuild(hs []store.HistoryEntry) (time.Duration, bool) {
	var ds []time.Duration
	for _, h := range hs {
		if h.Outcome != "success" || h.StartedAt.IsZero() || !h.FinishedAt.After(h.StartedAt) {
			continue
		}
		ds = append(ds, h.FinishedAt.Sub(h.StartedAt))
		if len(ds) == estimateBuilds {
			break
		}
	}
	if len(ds) == 0 {
		return 0, false
	}
	slices.Sort(ds)
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2], true
	}
	return (ds[n/2-1] + ds[n/2]) / 2, true
}
