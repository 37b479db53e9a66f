package pipeline

import "time"

// Event is one input to Apply. Exactly one of the pointer fields is set.
// Time is when it happened; it is the core's only clock.
type Event struct {
	Time    time.Time     `json:"time"`
	Trigger *TriggerEvent `json:"trigger,omitempty"`
	Merge   *MergeResult  `json:"merge,omitempty"`
	Build   *BuildResult  `json:"build,omitempty"`
	Report  *ReportResult `json:"report,omitempty"`
	Tick    *Tick         `json:"tick,omitempty"`
	Admin   *AdminEvent   `json:"admin,omitempty"`
}

// TriggerEvent is a Gerrit event normalised by the gerrit package and
// enriched by the scheduler with fresh snapshots of the change and of the
// changes related to it.
type TriggerEvent struct {
	// Type is Gerrit's event type: patchset-created, comment-added, ...
	Type    string `json:"type"`
	Project string `json:"project"`
	Branch  string `json:"branch,omitempty"`
	// Ref, OldRev and NewRev describe ref-updated events.
	Ref    string `json:"ref,omitempty"`
	OldRev string `json:"oldRev,omitempty"`
	NewRev string `json:"newRev,omitempty"`
	// Change is the change as Gerrit shows it after the event (nil for ref
	// updates): a full snapshot from REST (current patchset, approvals,
	// needs), not only what the stream event carried. It replaces the
	// snapshot of queued items of the same patchset.
	Change *Change `json:"change,omitempty"`
	// Patchset is the patchset the event is about (0: the current one).
	Patchset int `json:"patchset,omitempty"`
	// Account is the username of who caused the event.
	Account   string          `json:"account,omitempty"`
	Comment   string          `json:"comment,omitempty"`
	Approvals []EventApproval `json:"approvals,omitempty"`
	// Related holds snapshots of the changes Change needs and is needed by
	// (transitively), so the core can resolve dependencies without I/O.
	Related []Change `json:"related,omitempty"`
}

// EventApproval is a vote carried by a comment-added event. OldValue is nil
// when Gerrit did not say; a vote whose OldValue equals Value is a repeat,
// not a new grant.
type EventApproval struct {
	Label    string `json:"label"`
	Value    int    `json:"value"`
	OldValue *int   `json:"oldValue,omitempty"`
}

// ProjectCommit is the speculative commit of one project of a buildset.
type ProjectCommit struct {
	Project string `json:"project"`
	Branch  string `json:"branch"`
	Commit  string `json:"commit"`
}

// Conflict says which change of a speculative list does not merge.
type Conflict struct {
	Change  ChangeKey `json:"change"`
	Files   []string  `json:"files,omitempty"`
	Message string    `json:"message,omitempty"`
}

// MergeResult is the merger's answer to a prepare action: commits, a
// conflict, or an error (a missing ref or a broken mirror: not a conflict).
type MergeResult struct {
	BuildSet string          `json:"buildSet"`
	Commits  []ProjectCommit `json:"commits,omitempty"`
	Conflict *Conflict       `json:"conflict,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// NodeResult is one workflow node worth reporting.
type NodeResult struct {
	Name    string `json:"name"`
	Phase   Phase  `json:"phase"`
	URL     string `json:"url,omitempty"`
	Message string `json:"message,omitempty"`
}

// BuildResult is news about a buildset's workflow. ConfigError, when set,
// means the project's seakeeper.yaml could not produce a workflow.
type BuildResult struct {
	BuildSet    string       `json:"buildSet"`
	Phase       Phase        `json:"phase"`
	Message     string       `json:"message,omitempty"`
	URL         string       `json:"url,omitempty"`
	StartedAt   time.Time    `json:"startedAt"`
	FinishedAt  time.Time    `json:"finishedAt"`
	Nodes       []NodeResult `json:"nodes,omitempty"`
	ConfigError string       `json:"configError,omitempty"`
}

// ReportStatus is how a report action ended.
type ReportStatus string

// Report outcomes. The shell retries transient errors itself and, before
// saying Refused for a submit, re-queries Gerrit: a change that turned out
// merged is AlreadyMerged.
const (
	ReportOK            ReportStatus = "ok"
	ReportRefused       ReportStatus = "refused"
	ReportAlreadyMerged ReportStatus = "already-merged"
)

// ReportResult answers a report action. Only the results of submitting
// reports change anything.
type ReportResult struct {
	ActionID string       `json:"actionId"`
	BuildSet string       `json:"buildSet"`
	Status   ReportStatus `json:"status"`
	Message  string       `json:"message,omitempty"` // Gerrit's own words on refusal
}

// Tick advances the clock.
type Tick struct{}

// AdminOp is an operator command.
type AdminOp string

// Operator commands.
const (
	AdminEnqueue AdminOp = "enqueue"
	AdminDequeue AdminOp = "dequeue"
	AdminPromote AdminOp = "promote"
)

// AdminEvent is an operator command. Enqueue takes Change (and Related);
// Dequeue takes Changes[0]; Promote takes Changes in the wanted order, all in
// one queue of a dependent pipeline.
type AdminEvent struct {
	Op       AdminOp     `json:"op"`
	Pipeline string      `json:"pipeline"`
	Change   *Change     `json:"change,omitempty"`
	Related  []Change    `json:"related,omitempty"`
	Changes  []ChangeKey `json:"changes,omitempty"`
	// Force skips the pipeline requirements on enqueue.
	Force bool `json:"force,omitempty"`
}
