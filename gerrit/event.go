package gerrit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Event types of Gerrit's stream-events that Seakeeper recognises: those
// Gerrit core sends or sent (draft-published and merge-failed come only
// from old 2.x servers, assignee-changed from servers before 3.7). Other
// types, from plugins (ref-replicated, ...) or forks (change-deferred),
// are unknown: the Decoder skips and counts them.
const (
	TypeAssigneeChanged     = "assignee-changed"
	TypeChangeAbandoned     = "change-abandoned"
	TypeChangeDeleted       = "change-deleted"
	TypeChangeMerged        = "change-merged"
	TypeChangeRestored      = "change-restored"
	TypeCommentAdded        = "comment-added"
	TypeDraftPublished      = "draft-published"
	TypeDroppedOutput       = "dropped-output"
	TypeHashtagsChanged     = "hashtags-changed"
	TypeMergeFailed         = "merge-failed"
	TypePatchsetCreated     = "patchset-created"
	TypePrivateStateChanged = "private-state-changed"
	TypeProjectCreated      = "project-created"
	TypeProjectHeadUpdated  = "project-head-updated"
	TypeRefUpdated          = "ref-updated"
	TypeReviewerAdded       = "reviewer-added"
	TypeReviewerDeleted     = "reviewer-deleted"
	TypeTopicChanged        = "topic-changed"
	TypeVoteDeleted         = "vote-deleted"
	TypeWIPStateChanged     = "wip-state-changed"
)

var knownTypes = map[string]bool{
	TypeAssigneeChanged: true, TypeChangeAbandoned: true, TypeChangeDeleted: true,
	TypeChangeMerged: true, TypeChangeRestored: true, TypeCommentAdded: true,
	TypeDraftPublished: true, TypeDroppedOutput: true, TypeHashtagsChanged: true,
	TypeMergeFailed: true, TypePatchsetCreated: true, TypePrivateStateChanged: true,
	TypeProjectCreated: true, TypeProjectHeadUpdated: true, TypeRefUpdated: true,
	TypeReviewerAdded: true, TypeReviewerDeleted: true, TypeTopicChanged: true,
	TypeVoteDeleted: true, TypeWIPStateChanged: true,
}

// KnownType reports whether t is an event type Seakeeper recognises.
func KnownType(t string) bool { return knownTypes[t] }

// Event is one line of stream-events: the union of the fields of every
// event type. Fields an event type does not carry stay zero.
type Event struct {
	Type string `json:"type"`
	// EventCreatedOn is in seconds since the epoch; 0 when the server did
	// not say (servers before 2.x and some plugins).
	EventCreatedOn FlexInt `json:"eventCreatedOn"`
	// Project is the top-level project of change events (Gerrit 2.14+),
	// sent as a name or, by the webhooks plugin, as {"name": ...}.
	Project    Project    `json:"project,omitempty"`
	RefName    string     `json:"refName,omitempty"`
	ChangeKey  *ChangeKey `json:"changeKey,omitempty"`
	InstanceID string     `json:"instanceId,omitempty"`

	Change   *Change   `json:"change,omitempty"`
	PatchSet *PatchSet `json:"patchSet,omitempty"`

	// Who did it; which one is set depends on the type.
	Uploader  *Account `json:"uploader,omitempty"`  // patchset-created, draft-published
	Author    *Account `json:"author,omitempty"`    // comment-added
	Submitter *Account `json:"submitter,omitempty"` // change-merged, ref-updated, merge-failed
	Abandoner *Account `json:"abandoner,omitempty"` // change-abandoned
	Restorer  *Account `json:"restorer,omitempty"`  // change-restored
	Changer   *Account `json:"changer,omitempty"`   // topic-, wip-, private-state-, assignee-changed
	Editor    *Account `json:"editor,omitempty"`    // hashtags-changed
	Reviewer  *Account `json:"reviewer,omitempty"`  // reviewer-added/-deleted, vote-deleted: whose
	Adder     *Account `json:"adder,omitempty"`     // reviewer-added
	Remover   *Account `json:"remover,omitempty"`   // reviewer-deleted, vote-deleted
	Deleter   *Account `json:"deleter,omitempty"`   // change-deleted

	// Approvals are the votes a comment-added carries (every label of the
	// reviewer, with OldValue only for those this comment changed, on Gerrit
	// 2.13+), or the removed vote of vote-deleted.
	Approvals []Approval `json:"approvals,omitempty"`
	Comment   string     `json:"comment,omitempty"`
	// Reason is the message of change-abandoned, change-restored and
	// merge-failed.
	Reason string `json:"reason,omitempty"`
	// NewRev is the commit a change-merged event's change became on its
	// branch (a merge or rebased commit, or the patchset itself).
	NewRev string `json:"newRev,omitempty"`

	RefUpdate *RefUpdate `json:"refUpdate,omitempty"` // ref-updated

	OldTopic string   `json:"oldTopic,omitempty"` // topic-changed
	Added    []string `json:"added,omitempty"`    // hashtags-changed
	Removed  []string `json:"removed,omitempty"`
	Hashtags []string `json:"hashtags,omitempty"`

	OldAssignee *Account `json:"oldAssignee,omitempty"` // assignee-changed

	ProjectName string `json:"projectName,omitempty"` // project-created, project-head-updated
	HeadName    string `json:"headName,omitempty"`    // project-created
	OldHead     string `json:"oldHead,omitempty"`     // project-head-updated
	NewHead     string `json:"newHead,omitempty"`
}

// Known reports whether the event's type is one Seakeeper recognises.
func (e *Event) Known() bool { return KnownType(e.Type) }

// Account is a Gerrit user as events show it. Any field may be missing:
// old servers omit username, bots often have no email.
type Account struct {
	Name     string `json:"name,omitempty"`
	Email    string `json:"email,omitempty"`
	Username string `json:"username,omitempty"`
}

// username returns the account's username, "" for a nil account.
func (a *Account) username() string {
	if a == nil {
		return ""
	}
	return a.Username
}

// Approval is a vote. Type is the label name (Gerrit before 2.6: a category
// id such as CRVW). Values arrive as strings ("-1", "2") and are read as
// integers; OldValue is nil when the server did not send it.
type Approval struct {
	Type        string   `json:"type"`
	Description string   `json:"description,omitempty"`
	Value       FlexInt  `json:"value"`
	OldValue    *FlexInt `json:"oldValue,omitempty"`
	GrantedOn   FlexInt  `json:"grantedOn,omitempty"`
	By          *Account `json:"by,omitempty"`
}

// PatchSet is a patchset as events show it. Approvals only appear in query
// output, never in stream-events proper.
type PatchSet struct {
	Number         FlexInt    `json:"number"`
	Revision       string     `json:"revision,omitempty"`
	Parents        []string   `json:"parents,omitempty"`
	Ref            string     `json:"ref,omitempty"`
	Uploader       *Account   `json:"uploader,omitempty"`
	Author         *Account   `json:"author,omitempty"`
	CreatedOn      FlexInt    `json:"createdOn,omitempty"`
	Kind           string     `json:"kind,omitempty"`
	IsDraft        bool       `json:"isDraft,omitempty"`
	SizeInsertions FlexInt    `json:"sizeInsertions,omitempty"`
	SizeDeletions  FlexInt    `json:"sizeDeletions,omitempty"` // signed; older servers send it negative
	Approvals      []Approval `json:"approvals,omitempty"`
}

// Change is a change as events show it (Gerrit's ChangeAttribute). Status
// and CommitMessage are missing in events of old servers; WIP and Private
// are only sent when true.
type Change struct {
	Project       Project  `json:"project"`
	Branch        string   `json:"branch"`
	Topic         string   `json:"topic,omitempty"`
	ID            string   `json:"id,omitempty"` // the Change-Id
	Number        FlexInt  `json:"number"`
	Subject       string   `json:"subject,omitempty"`
	Owner         *Account `json:"owner,omitempty"`
	Assignee      *Account `json:"assignee,omitempty"`
	URL           string   `json:"url,omitempty"`
	CommitMessage string   `json:"commitMessage,omitempty"`
	Hashtags      []string `json:"hashtags,omitempty"`
	CreatedOn     FlexInt  `json:"createdOn,omitempty"`
	LastUpdated   FlexInt  `json:"lastUpdated,omitempty"`
	Open          *bool    `json:"open,omitempty"`
	Status        string   `json:"status,omitempty"`
	WIP           bool     `json:"wip,omitempty"`
	Private       bool     `json:"private,omitempty"`
}

// RefUpdate is what a ref-updated event updated. RefName is a full ref name,
// except on old servers, which name branches without refs/heads/. A created
// ref has an OldRev of forty zeros, a deleted one such a NewRev.
type RefUpdate struct {
	OldRev  string  `json:"oldRev"`
	NewRev  string  `json:"newRev"`
	RefName string  `json:"refName"`
	Project Project `json:"project"`
}

// ChangeKey is the Change-Id of an event's change. Gerrit's stream sends
// {"id": ...}; the webhooks plugin sends {"key": ...}.
type ChangeKey struct {
	ID  string `json:"id,omitempty"`
	Key string `json:"key,omitempty"`
}

// String returns the Change-Id, whichever field carried it.
func (k *ChangeKey) String() string {
	if k == nil {
		return ""
	}
	if k.ID != "" {
		return k.ID
	}
	return k.Key
}

// FlexInt is an integer that Gerrit sends as a JSON number or as a string
// holding one ("12345", "-1", "+2"). null and "" read as 0.
type FlexInt int64

// Int returns the value as an int.
func (n FlexInt) Int() int { return int(n) }

// UnmarshalJSON implements json.Unmarshaler.
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*n = 0
			return nil
		}
	}
	v, err := parseInt(s)
	if err != nil {
		return fmt.Errorf("want an integer or a string holding one, got %s", truncate(b, 40))
	}
	*n = FlexInt(v)
	return nil
}

// parseInt reads an integer, accepting integral numbers written as floats
// (1.7e9) too.
func parseInt(s string) (int64, error) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("%s is not an integer", s)
	}
	return int64(f), nil
}

// Project is a project name that Gerrit sends as a string, or that the
// webhooks plugin sends as an object {"name": ...}.
type Project string

// UnmarshalJSON implements json.Unmarshaler.
func (p *Project) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = Project(s)
		return nil
	case len(b) > 0 && b[0] == '{':
		var o struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return fmt.Errorf("project object: %w", err)
		}
		*p = Project(o.Name)
		return nil
	}
	return fmt.Errorf("want a project name or {\"name\": ...}, got %s", truncate(b, 40))
}

// truncate returns at most n bytes of b for an error message.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
