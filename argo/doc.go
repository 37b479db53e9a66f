// Package argo runs the workflow of every queue item as an Argo Workflow on
// Kubernetes and turns what happens to it into pipeline.BuildResults.
//
// It has three parts:
//
//   - Project config (ParseProjectConfig, ConfigCache): the seakeeper.yaml
//     that project owners keep on refs/meta/config. Per pipeline it names a
//     WorkflowTemplate (preferred) or carries an inline Workflow spec, a
//     timeout and extra parameters. Parsing is strict and positions every
//     problem at a line; from an inline spec only an allowlist of fields is
//     taken (see policy.go). Problems become a ConfigError that the pipeline
//     reports on the triggering change.
//   - Rendering (RenderOptions.Render): the Workflow contract of DESIGN §4 —
//     namespace, deterministic name, seakeeper.io/* labels and annotations,
//     seakeeper-* parameters, priority, and the fields Seakeeper always
//     forces (ttlStrategy, podGC, activeDeadlineSeconds).
//   - Lifecycle (Adapter): create (adopting what already exists under the
//     same name when it belongs to the same buildset), watch through shared
//     informers, cancel (merge patch spec.shutdown=Terminate, then delete as
//     a backstop), adopt or cancel what a previous run left behind, and a
//     global cap on running workflows with a priority queue in front of it.
//
// What it must not do: decide anything about gating (which buildsets run,
// what a failure means for the queue: that is the pipeline's job); let a
// project's configuration choose the service account, the security context,
// host namespaces or host paths of its pods, or override the fields
// Seakeeper forces; take a verdict from workflow nodes instead of
// status.phase and status.message; call other adapters (Gerrit, the
// merger) — project config arrives through the narrow ConfigSource; keep
// waiting work in the cluster (excess workflows wait in the daemon); or
// panic or exit on a Kubernetes error: errors are retried or reported as
// build results. It keeps no package-level mutable state; time comes from an
// injected clock.
package argo
