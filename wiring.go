package main

import (
	"net/http"

	"github.com/seakeeper-ci/seakeeper/scheduler"
	"github.com/seakeeper-ci/seakeeper/web"
)

// withWeb adds the public side of the daemon to opts: the status page, the
// JSON API, /metrics and the health endpoints on web.listen, and the
// metrics that watch the loop. `serve` and `demo` both use it, so that the
// demo shows exactly what the daemon serves.
func withWeb(cfg *scheduler.Config, opts scheduler.ServeOptions) (scheduler.ServeOptions, error) {
	metrics, err := web.NewMetrics(web.MetricsOptions{Config: cfg})
	if err != nil {
		return opts, err
	}
	// One Metrics value is both the loop's observer and the source of
	// /readyz's stream check.
	opts.Observer = metrics
	opts.GerritResponse = metrics.GerritResponse
	opts.KubernetesError = metrics.KubernetesError
	opts.Public = func(d scheduler.Daemon) (http.Handler, error) {
		return web.New(web.Options{
			Config:     cfg,
			Snapshot:   d.Scheduler.Snapshot,
			History:    d.Store.History,
			Store:      func() error { _, err := d.Store.Info(); return err },
			IsLeader:   d.IsLeader,
			Kubernetes: d.Kubernetes,
			Metrics:    metrics,
			Logger:     opts.Logger,
		})
	}
	return opts, nil
}
