// Package web is Seakeeper's public HTTP face: the status page, the status
// API, Prometheus metrics and the health endpoints. It reads the immutable
// snapshot the scheduler publishes after each turn (scheduler.Snapshot)
// and the store's history of finished items (for time estimates).
//
// What it must not do: change anything (every method but GET and HEAD is
// answered 405); block or call back into the scheduler's loop (Metrics,
// the scheduler.Observer, only counts); call the adapters; query the store
// per request and item (estimates are cached); show a change of a
// restricted project or a private change, or anything naming one; load
// anything from outside the server (no CDN, no web fonts); register
// metrics in Prometheus' global registry.
//
// # Routes
//
//	GET /                     status page (HTML; ?q= filters by project or change number)
//	GET /static/app.js, /static/style.css
//	GET /api/status           Status (JSON)
//	GET /api/changes/<n>      ChangeItems (JSON); 404 when change n is in no
//	                          queue, 400 when n is not a positive integer
//	GET /metrics              Prometheus text format
//	GET /healthz              200 "ok" while the process serves
//	GET /readyz               200 when every check passes, else 503
//
// API errors are JSON {"error": "<what and where>"}. Before the scheduler
// loaded its state the API and the page answer 503.
//
// # Status API contract
//
// Field names are stable: fields may be added, never renamed or removed.
// Times are RFC 3339 UTC; durations are whole seconds, computed for "now".
//
//	Status        {now, turn, updatedAt, gerritUrl?, pipelines: [Pipeline]}
//	Pipeline      {name, manager (independent|dependent|supercedent), description?, queues: [Queue]}
//	Queue         {name, window (dependent; else 0), items: [Item]}
//	Item          {id, pipeline, queue, change: Change, ahead?, live, active,
//	               failing, failingReasons?, submitting, enqueuedAt,
//	               enqueuedSeconds, changes: [Change], buildSet?, merge,
//	               build?: Build, elapsedSeconds, estimatedSeconds, remainingSeconds}
//	Change        {project, branch?, number? (absent: a ref update), patchset?,
//	               ref?, subject?, owner?, url?}
//	Build         {phase (Pending|Running|Succeeded|Failed|Error), message?, url?,
//	               startedAt, finishedAt?, cancelled, nodes: [Node],
//	               elapsedSeconds, estimatedSeconds, remainingSeconds}
//	Node          {name, phase, url?, message?}
//	ChangeItems   {number, now, items: [Item]}
//
// Items are in queue order, head first. ahead is the id of the item this
// one is tested behind (the nearest non-failing item ahead in a dependent
// queue); a hidden item ahead is skipped to the nearest visible one, and
// queues without a visible item are left out. changes is the speculative
// change list of the current buildset, the item's own change last, in
// short form (project, number, patchset, ref for a ref update, branch only
// when it is not the item's); hidden changes are left out of it. merge is
// "", pending, ready, conflict or error. change.url and build.url link to
// Gerrit (<gerrit.url>c/<project>/+/<number>) and to the Argo UI.
// estimatedSeconds is the median run time of the newest successful builds
// of the pipeline and project in the history (DefaultEstimate without
// one); elapsedSeconds of an item counts from its current buildset (to its
// build's end), of a build from its start; remainingSeconds is
// max(0, estimated - elapsed), 0 once the build finished. An API client
// that asks for gzip gets /api/status compressed.
//
// # Performance
//
// The view (filtered, estimated, encoded without its time fields) is built
// once per snapshot turn; each second, the durations are stamped and
// spliced into the encoded document, once for all clients. See
// BenchmarkStatusJSON (1,000 items).
//
// # Metrics
//
// All in Metrics' own registry, with the Go and process collectors:
//
//	seakeeper_queue_items{pipeline,queue}          gauge: items of a dependent pipeline's queue
//	seakeeper_queue_active_items{pipeline,queue}   gauge: of them inside the window
//	seakeeper_queue_window{pipeline,queue}         gauge: the window
//	seakeeper_pipeline_items{pipeline}             gauge: items in all queues of a pipeline
//	seakeeper_builds_running{pipeline}             gauge: workflows not finished
//	seakeeper_items_enqueued_total{pipeline}       counter
//	seakeeper_items_merged_total{pipeline}         counter: submits that merged
//	seakeeper_items_failed_total{pipeline,outcome} counter: failure, merge-conflict, config-error reports
//	seakeeper_gate_resets_total{pipeline}          counter: buildsets re-prepared (attempt > 1) in dependent pipelines
//	seakeeper_events_applied_total{kind}           counter: trigger, merge, build, report, admin, tick
//	seakeeper_approval_to_merge_seconds{pipeline}  histogram: enqueue to merge
//	seakeeper_build_duration_seconds{pipeline,phase} histogram: workflow run time
//	seakeeper_event_intake_lag_seconds             histogram: Gerrit's eventCreatedOn to intake
//	seakeeper_stream_connected                     gauge: 1 while the Gerrit stream is connected
//	seakeeper_stream_reconnects_total              counter
//	seakeeper_gerrit_api_errors_total{class}       counter: transport, 429, 4xx, 5xx (each attempt)
//	seakeeper_kubernetes_api_errors_total{op,reason} counter: reason is the API status reason or transport
//	seakeeper_store_commit_seconds                 histogram: the store transaction of a turn
//	seakeeper_turn_duration_seconds                histogram: a whole turn
//
// Queue gauges exist for dependent pipelines only (their queues are
// configured, so the label set is bounded); the queue of a restricted
// project is labelled "(restricted)". The counters are derived from the
// events each turn applied and the actions it emitted, against the items of
// the previous turn (see deriver).
//
// # Readiness
//
// /readyz checks, one line each in its body ("ok <check>",
// "FAIL <check>: <why>", or "skip <check>: not configured"): store
// (Options.Store), snapshot (the scheduler published one), leader
// (Options.IsLeader), gerrit-stream (connected, or disconnected for at most
// Options.StreamGrace, as Metrics saw it from the stream's items) and
// kubernetes (Options.Kubernetes, run at most once per
// Options.KubernetesInterval).
//
// # Wiring
//
//	metrics, err := web.NewMetrics(web.MetricsOptions{Config: cfg})
//	// ServeOptions.Observer = metrics; gerrit.ClientConfig.OnResponse =
//	// metrics.GerritResponse; argo.Options.OnAPIError = metrics.KubernetesError
//	ServeOptions.Public = func(d scheduler.Daemon) (http.Handler, error) {
//		return web.New(web.Options{
//			Config: cfg, Snapshot: d.Scheduler.Snapshot, History: d.Store.History,
//			Store:    func() error { _, err := d.Store.Info(); return err },
//			IsLeader: d.IsLeader, Kubernetes: d.Kubernetes, Metrics: metrics,
//		})
//	}
package web
