// Package argolocal is a stand-in for the Argo workflow-controller that runs
// Workflows as plain processes on this machine.
//
// It is a test and demo tool only, never for production. It exists so that
// `seakeeper demo` and the system tests (DESIGN §6, tier 3) can run real test
// commands — typically a `git clone` of the merger's git endpoint followed by
// a build — without a Kubernetes node or an Argo installation. It watches
// Workflow objects through the same generated clientset the argo adapter
// uses (a fake clientset or a real kube-apiserver with Argo's CRDs), runs
// them, and writes their status back the way Argo does, so the adapter under
// test cannot tell the difference for the fields Seakeeper reads.
//
// # What it must not do
//
//   - Run in production, or be started by `seakeeper serve`. It executes the
//     commands of every Workflow it sees as the user running it, with no
//     container, no image, no resource limits, no securityContext, no
//     service account and no network isolation.
//   - Watch a cluster where a real Argo controller runs, or Workflows it was
//     not meant for: it would run strangers' commands on this machine and
//     fight the real controller over status. Config.Namespace and
//     Config.LabelSelector narrow what it picks up. For the same reason two
//     argolocal controllers must not watch the same Workflows: each would
//     take the other's running Workflows for leftovers of a restart.
//   - Pretend to support what it does not: a Workflow that uses a feature
//     listed as rejected below ends in phase Error with a message naming
//     the feature, rather than running with different semantics.
//
// # What it runs
//
// Entry point spec.entrypoint, or a workflowTemplateRef to a WorkflowTemplate
// (same namespace) or ClusterWorkflowTemplate: the template's spec is fetched
// through the clientset when the Workflow starts, templates are merged by
// name and the Workflow's arguments override the template's.
//
// Templates: container and script (command, args, env, workingDir, source;
// image ignored), steps (groups in sequence, steps of a group in parallel),
// dag (tasks with dependencies, or depends of the form "a && b.Succeeded",
// fail-fast unless failFast: false), continueOn failed/error, arguments
// passed to inputs.parameters (with default), and substitution of
// {{inputs.parameters.x}}, {{workflow.parameters.x}}, {{workflow.name}},
// {{workflow.namespace}} and {{workflow.uid}}. An unresolvable reference to
// inputs, outputs, workflow, steps, tasks, item or pod fails the node with
// "failed to resolve {{...}}", as Argo does.
//
// Deadlines and stopping: spec.activeDeadlineSeconds (counted from
// status.startedAt) and a template's activeDeadlineSeconds kill the
// processes, and the nodes and the workflow fail with "Step exceeded its
// deadline". spec.shutdown: Terminate or Stop kills them too, and the
// workflow fails with "Stopped with strategy 'Terminate'" (or 'Stop'; there
// are no exit handlers to run). Deleting a Workflow kills its processes.
//
// Rejected (phase Error): spec.onExit, spec.suspend, hooks, when, withItems, withParam,
// withSequence, templateRef and inline steps or tasks, dag targets, env
// valueFrom, artifacts passed as arguments or expected as inputs, and every
// other template type (resource, suspend, http, data, plugin,
// containerSet). Ignored: image, resources, volumes and volumeClaimTemplates
// (nodes share nothing but absolute paths), sidecars, outputs,
// retryStrategy, podGC, ttlStrategy (finished Workflows stay), priority,
// serviceAccountName and the other pod-level settings.
//
// # Processes
//
// Each container or script node runs with os/exec in a process group of its
// own (so that killing it kills whatever it started, as stopping a container
// would) in a fresh directory
//
//	<WorkDir>/<namespace>/<workflow>/<node ID>
//
// with a relative workingDir (a leading "/" dropped) created inside it. HOME
// is a fresh <node ID>.home next to it, stdout and stderr go to
// <node ID>.log next to it, and a script's source goes to <node ID>.script
// and is run as command + args + [that file] (command defaults to [sh]).
// The workflow's directory is emptied when the Workflow starts, and its
// annotation argolocal.seakeeper.io/workdir names it (NodeLog uses it).
//
// The environment is only PATH (a standard default), HOME, Config.Env and
// the template's env, in that order, later entries winning; the
// controller's own environment is not passed on. When the main process
// exits, what is left of its group is killed. A non-zero exit fails the node
// with "exit code N" (128+signal for a signal).
//
// # Status
//
// Status is written with Update (Argo's CRDs have no status subresource and
// the generated clientset has no UpdateStatus for Workflows), retried on
// Conflict by re-reading the Workflow and re-applying only status, the
// labels workflows.argoproj.io/phase and
// workflows.argoproj.io/completed, and the workdir annotation. Phases go
// Pending (only while waiting for one of Config.Parallel slots) → Running →
// Succeeded, Failed or Error. Nodes are keyed by ID (the workflow name for
// the root node, <workflow>-<fnv32a of the node name> for the others), with
// Argo's names ("wf[0].build", "wf.test"), types Pod, Steps, StepGroup and
// DAG, children, boundaryID, times and messages; a failed node's message is
// passed up to its ancestors and to status.message. Status is written after
// each node transition, coalesced while a write is in flight. The verbs it
// needs are get, list, watch and update on workflows, and get on
// workflowtemplates or clusterworkflowtemplates when those are referred to.
//
// # Restarts
//
// argolocal cannot re-attach to the processes of a previous incarnation.
// Run kills everything it started before it returns, without writing
// status; after a kill -9 of the controller, the processes it started are
// orphaned and run to their end unobserved. So when it finds a Workflow in
// phase Running that it did not start itself, it marks it and its
// unfinished nodes Failed with the message "argolocal restarted". A
// Workflow still Pending is simply started.
package argolocal
