package pipeline

import (
	"fmt"
	"time"
)

// ChangeKey identifies a Gerrit change: project and number (Gerrit's
// "project~number"), never a bare Change-Id, which repeats across branches.
type ChangeKey struct {
	Project string `json:"project"`
	Number  int    `json:"number"`
}

func (k ChangeKey) String() string { return fmt.Sprintf("%s~%d", k.Project, k.Number) }

// Status is a change's Gerrit status.
type Status string

// Gerrit change statuses.
const (
	StatusNew       Status = "NEW"
	StatusMerged    Status = "MERGED"
	StatusAbandoned Status = "ABANDONED"
)

// Approval is one vote on the change's current patchset.
type Approval struct {
	Label string `json:"label"`
	Value int    `json:"value"`
	By    string `json:"by,omitempty"` // username
}

// Need is a change that must merge before (or together with, ahead in the
// same queue) the change that needs it: its git parent or a Depends-On.
type Need struct {
	Change ChangeKey `json:"change"`
	// Patchset is the patchset the git parent points at; 0 for Depends-On,
	// which means "whatever is current".
	Patchset int `json:"patchset,omitempty"`
	// Merged is set once the needed change is known to have merged.
	Merged bool `json:"merged,omitempty"`
}

// Change is a snapshot of a change as the shell last saw it in Gerrit, or,
// when Number is 0, a ref update (post pipelines): Ref, Commit and OldRev.
type Change struct {
	Project  string `json:"project"`
	Branch   string `json:"branch"`
	Number   int    `json:"number,omitempty"`
	Patchset int    `json:"patchset,omitempty"` // the current patchset
	// Ref is the patchset ref (refs/changes/45/12345/3) or the updated ref.
	Ref    string `json:"ref"`
	Commit string `json:"commit,omitempty"` // patchset commit, or new revision of a ref
	OldRev string `json:"oldRev,omitempty"`

	ChangeID string `json:"changeId,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Owner    string `json:"owner,omitempty"`
	URL      string `json:"url,omitempty"`

	Status    Status     `json:"status,omitempty"`
	WIP       bool       `json:"wip,omitempty"`
	Private   bool       `json:"private,omitempty"`
	Approvals []Approval `json:"approvals,omitempty"`

	// Needs are the changes this one depends on: open git parents and the
	// resolved Depends-On footers, parents first. The shell resolves them.
	Needs []Need `json:"needs,omitempty"`
	// NeededBy are open changes that depend on this one; a dependent
	// pipeline enqueues those that qualify behind it.
	NeededBy []ChangeKey `json:"neededBy,omitempty"`
	// Unresolved lists Depends-On references the shell could not resolve.
	Unresolved []string `json:"unresolved,omitempty"`
}

// Key returns the change's key.
func (c *Change) Key() ChangeKey { return ChangeKey{c.Project, c.Number} }

// IsRef reports whether this is a ref update rather than a change.
func (c *Change) IsRef() bool { return c.Number == 0 }

// id is the identity of the thing under test: project~number for changes,
// project:ref@commit for ref updates.
func (c *Change) id() string {
	if c.IsRef() {
		return c.Project + ":" + c.Ref + "@" + c.Commit
	}
	return c.Key().String()
}

func (c *Change) String() string {
	if c.IsRef() {
		short := c.Commit
		if len(short) > 10 {
			short = short[:10]
		}
		return fmt.Sprintf("%s %s@%s", c.Project, c.Ref, short)
	}
	return fmt.Sprintf("%s,%d", c.Key(), c.Patchset)
}

func (c *Change) isOpen() bool { return c.Status == "" || c.Status == StatusNew }

// Spec is one entry of a speculative change list: what the merger merges and
// the workflow tests.
type Spec struct {
	Project  string `json:"project"`
	Branch   string `json:"branch"`
	Number   int    `json:"number,omitempty"`
	Patchset int    `json:"patchset,omitempty"`
	Ref      string `json:"ref"`
	Commit   string `json:"commit,omitempty"`
}

func specOf(c *Change) Spec {
	return Spec{Project: c.Project, Branch: c.Branch, Number: c.Number, Patchset: c.Patchset, Ref: c.Ref, Commit: c.Commit}
}

// Key returns the change key of the spec.
func (s Spec) Key() ChangeKey { return ChangeKey{s.Project, s.Number} }

func (s Spec) String() string {
	if s.Number == 0 {
		return s.Project + ":" + s.Ref
	}
	return fmt.Sprintf("%s,%d", ChangeKey{s.Project, s.Number}, s.Patchset)
}

// MergeState is the progress of a buildset's speculative merge.
type MergeState string

// Merge states.
const (
	MergeNone     MergeState = ""         // not requested yet
	MergePending  MergeState = "pending"  // prepare action emitted
	MergeReady    MergeState = "ready"    // commits known
	MergeConflict MergeState = "conflict" // a change does not merge
	MergeError    MergeState = "error"    // the merger failed repeatedly
)

// Phase is a workflow phase as Argo names it.
type Phase string

// Workflow phases.
const (
	PhasePending   Phase = "Pending"
	PhaseRunning   Phase = "Running"
	PhaseSucceeded Phase = "Succeeded"
	PhaseFailed    Phase = "Failed"
	PhaseError     Phase = "Error"
)

// Terminal reports whether the phase is final.
func (p Phase) Terminal() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseError
}

// BuildSet is one attempt at testing an item: its speculative change list,
// the merge that realises it and the workflow that tests it. A reset
// replaces the buildset; results for an old buildset are ignored.
type BuildSet struct {
	ID      string `json:"id"`
	Changes []Spec `json:"changes"`
	// Merged lists changes of Changes that have merged since the buildset
	// was made: the branch tip now holds them, so the build stays valid.
	Merged        []ChangeKey     `json:"merged,omitempty"`
	Merge         MergeState      `json:"merge,omitempty"`
	MergeAttempts int             `json:"mergeAttempts,omitempty"`
	Commits       []ProjectCommit `json:"commits,omitempty"`
	Conflict      *Conflict       `json:"conflict,omitempty"`
	MergeError    string          `json:"mergeError,omitempty"`
	Build         *Build          `json:"build,omitempty"`
	ConfigError   string          `json:"configError,omitempty"`
	CreatedAt     time.Time       `json:"createdAt"`
}

// Build is the workflow of a buildset.
type Build struct {
	Phase      Phase        `json:"phase"`
	Message    string       `json:"message,omitempty"`
	URL        string       `json:"url,omitempty"`
	Nodes      []NodeResult `json:"nodes,omitempty"`
	StartedAt  time.Time    `json:"startedAt"`
	FinishedAt time.Time    `json:"finishedAt"`
	// Cancelled is set once a cancel action was emitted.
	Cancelled bool `json:"cancelled,omitempty"`
	// FailedEarly is set when a node failed while the workflow still ran.
	FailedEarly bool `json:"failedEarly,omitempty"`
}

// Item is a change (or ref) in a queue.
type Item struct {
	ID string `json:"id"`
	// N is the sequence number the ID was made from: enqueue order.
	N      int64  `json:"n"`
	Queue  string `json:"queue"`
	Change Change `json:"change"`
	// Live items are reported; non-live items are needed changes enqueued
	// ahead in an independent pipeline only to be tested with.
	Live bool `json:"live"`
	// Active items are inside the window: they get merges and builds.
	Active bool `json:"active,omitempty"`
	// Ahead is the ID of the item this one is tested on top of ("" at the
	// head). In a dependent queue it is the nearest non-failing item ahead.
	Ahead      string    `json:"ahead,omitempty"`
	EnqueuedAt time.Time `json:"enqueuedAt"`
	BuildSet   *BuildSet `json:"buildSet,omitempty"`
	Attempts   int       `json:"attempts,omitempty"`
	// Failing holds why the item will not merge, if it will not.
	Failing []string `json:"failing,omitempty"`
	// Submitting is the ID of the report action whose submit is in flight.
	Submitting string `json:"submitting,omitempty"`

	gone bool // dequeued during this Apply
}

// Queue is an ordered list of items tested in sequence. Dependent pipelines
// have one per shared queue (or project) and branch; independent pipelines
// one per live item; supercedent pipelines one per project and ref.
type Queue struct {
	Name   string  `json:"name"`
	Window int     `json:"window,omitempty"`
	Items  []*Item `json:"items"`
}

// PipelineState is the queues of one pipeline.
type PipelineState struct {
	Name   string   `json:"name"`
	Queues []*Queue `json:"queues"`

	idx *index
}

// StateVersion is the schema version of State.
const StateVersion = 1

// State is everything the core knows. It serialises to JSON.
type State struct {
	Version   int              `json:"version"`
	Seq       int64            `json:"seq"`
	Now       time.Time        `json:"now"`
	Pipelines []*PipelineState `json:"pipelines"`
}

// NewState returns an empty state.
func NewState() *State { return &State{Version: StateVersion} }

// Pipeline returns the named pipeline's state, or nil.
func (s *State) Pipeline(name string) *PipelineState {
	for _, p := range s.Pipelines {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Items returns every item of the pipeline, queue by queue.
func (p *PipelineState) Items() []*Item {
	var out []*Item
	for _, q := range p.Queues {
		out = append(out, q.Items...)
	}
	return out
}
