// Package scheduler is Seakeeper's imperative shell: the only place that
// sequences things. It reads Gerrit events, calls the pure pipeline core,
// persists each turn, dispatches the resulting actions to the adapters
// (merger, argo, gerrit) and feeds their results back as events; it also
// owns recovery after a restart, leader election (Serve acts only while
// this instance holds a Kubernetes Lease) and periodic housekeeping (a
// Tick event every tick-interval; the merger's Keep and Maintain).
//
// It also holds the main configuration: Config, its defaults, and
// LoadConfig / ParseMainConfig, which read it strictly and report every
// problem as "file:line: path: message".
//
// # The loop
//
// Scheduler.Run's goroutine owns the pipeline state; nothing else reads or
// writes it. The adapters are reached through narrow interfaces (GerritAPI,
// MergerAPI, BuildAPI) so that tests use cheap fakes, and time comes from an
// injected clock.
//
//   - Intake: every stream event is normalised (gerrit.Normalize) and
//     written to the store's inbox before anything else happens to it; a
//     Resync item starts a resync. Nothing is applied straight from the
//     stream.
//   - Settle and re-read: a change event rests in the inbox for the settle
//     delay, then its change is re-read over REST (ChangeSnapshot, plus the
//     snapshots of the changes it needs and is needed by, recursively, at
//     most RelatedLimit) and replaces what the event said. A patchset-created
//     or comment-added about a patchset that is no longer current is
//     dropped. A failed re-read is retried with backoff; after
//     maxEnrichAttempts the event is applied as it came, never lost.
//     Change events keep their order: one that is not ready holds back
//     those after it. Results and operator events need no settling.
//   - A turn takes the ready inbox entries (at most maxTurnBatch), applies
//     each with Engine.Apply, and makes the turn durable in ONE
//     store.Commit: the new state, the consumed inbox entries, the emitted
//     actions (the outbox) and the actions confirmed carried out since the
//     last turn. Only then are the actions dispatched. Notices are only
//     logged.
//   - Dispatch: each action runs in a goroutine of its own; prepares,
//     cancels and reports wait for one of Workers slots, builds for a slot
//     of the build adapter (argo.Adapter.Submit blocks). An action ID under
//     way is not started twice. Results (merge, build, submit report) are
//     appended to the inbox, and the action is confirmed in the next
//     commit. A crash in between re-runs the action: every one is
//     idempotent (stable IDs and buildsets, adoption of Workflows by name).
//   - Reports: a review with the reporter's labels, its message plus a
//     link to <StatusURL>/#<item>, and the pipeline's tag, posted on the
//     tested revision; transient failures are retried a few times. A
//     submit report then submits the tested revision: AlreadyMerged gives
//     ReportAlreadyMerged (the success path), a refusal (conflict, not
//     mergeable, rule failed, permission denied, change closed)
//     ReportRefused with Gerrit's message, and a submit without a verdict
//     is retried SubmitRetries times with doubling backoff, then refused.
//     Only submit reports produce a ReportResult event.
//
// # Recovery and resync
//
// On start Run loads the state, takes the outbox of the last run and
// re-dispatches it: an action whose result is in the inbox already (a
// merge result for a prepare's buildset, a report result for a report's
// ID) is only confirmed; a prepare is run again; a build is submitted again
// (the adapter adopts an existing Workflow); a report is posted again (it
// was not confirmed, so its outcome is unknown). Before that,
// BuildAPI.Adopt is told the buildsets whose builds the state says are
// running; those it reports missing are submitted again with the engine's
// action ID ("build/<buildset>").
//
// A resync runs on start and on every stream Resync item (connected,
// dropped-output, overflow). It queries the open changes (ResyncQuery; by
// default every open change, the query only pre-filters), keeps those for
// which Engine.ApprovalPipelines names a pipeline that has not reported on
// their current patchset yet (the store's history, which each turn feeds
// with its final reports), reads their snapshots,
// and writes one admin enqueue event per pipeline to the inbox. Those are
// re-read again right before they are applied (a change merged since is
// dropped), so a resync racing a submit does not enqueue a merged change.
// Only one resync runs at a time; one asked for meanwhile runs after it.
//
// # Shutdown
//
// When Run's context ends it stops reading the stream, finishes the turn
// under way, gives running actions ShutdownGrace (wall-clock time), then
// cancels them, commits the confirmations it has and returns. Actions not
// finished stay in the outbox for the next start; events not applied stay
// in the inbox. The whole takes at most ShutdownGrace plus a few seconds.
package scheduler
