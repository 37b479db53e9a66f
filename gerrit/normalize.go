package gerrit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Normalize turns an event into the pipeline's trigger event. It returns
// false for what Seakeeper ignores: unknown types; dropped-output, which is
// a signal to resync, not a trigger; ref-updated of Gerrit's internal refs
// (see IgnoredRef); and events too incomplete to name a project, or, for
// change events, a change number.
//
// The Change snapshot holds what the event alone says. Its Patchset is the
// patchset the event is about, which need not be the current one, and it
// has no Needs or NeededBy: the scheduler replaces it with a fresh snapshot
// from REST (see DependsOnOf for the footers) before the core sees it.
func Normalize(ev *Event) (*pipeline.TriggerEvent, bool) {
	if ev == nil || !ev.Known() {
		return nil, false
	}
	switch ev.Type {
	case TypeDroppedOutput:
		return nil, false
	case TypeRefUpdated:
		return normalizeRefUpdate(ev)
	case TypeProjectCreated, TypeProjectHeadUpdated:
		return normalizeProject(ev)
	}
	return normalizeChange(ev)
}

// DependsOnOf returns the Depends-On footers of the commit message of the
// event's change, for the scheduler to resolve.
func DependsOnOf(ev *Event) []pipeline.DependsOn {
	if ev == nil || ev.Change == nil {
		return nil
	}
	return pipeline.ParseDependsOn(ev.Change.CommitMessage)
}

// ignoredRefPrefixes are refs Gerrit keeps for itself: patchset refs and
// NoteDb's change meta refs (refs/changes/...), project config and other
// metadata (refs/meta/...), and the refs of All-Users and All-Projects.
var ignoredRefPrefixes = []string{
	"refs/changes/",
	"refs/meta/",
	"refs/users/",
	"refs/cache-automerge/",
	"refs/sequences/",
	"refs/draft-comments/",
	"refs/starred-changes/",
	"refs/groups/",
	"refs/deleted-groups/",
}

// IgnoredRef reports whether ref (a full ref name) is one of Gerrit's
// internal refs, whose updates trigger nothing.
func IgnoredRef(ref string) bool {
	for _, p := range ignoredRefPrefixes {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	return false
}

// fullRef returns a full ref name: old servers name branches without
// refs/heads/ in ref-updated ("master").
func fullRef(name string) string {
	if name == "" || strings.HasPrefix(name, "refs/") {
		return name
	}
	return "refs/heads/" + name
}

func normalizeRefUpdate(ev *Event) (*pipeline.TriggerEvent, bool) {
	ru := ev.RefUpdate
	if ru == nil {
		return nil, false
	}
	project := firstOf(string(ru.Project), string(ev.Project))
	ref := fullRef(ru.RefName)
	if project == "" || ref == "" || IgnoredRef(ref) {
		return nil, false
	}
	te := &pipeline.TriggerEvent{
		Type:    ev.Type,
		Project: project,
		Ref:     ref,
		OldRev:  ru.OldRev,
		NewRev:  ru.NewRev,
		Account: ev.Submitter.username(),
	}
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		te.Branch = b
	}
	return te, true
}

func normalizeProject(ev *Event) (*pipeline.TriggerEvent, bool) {
	project := firstOf(ev.ProjectName, string(ev.Project))
	if project == "" {
		return nil, false
	}
	head := firstOf(ev.NewHead, ev.HeadName)
	return &pipeline.TriggerEvent{
		Type:    ev.Type,
		Project: project,
		Branch:  strings.TrimPrefix(head, "refs/heads/"),
	}, true
}

func normalizeChange(ev *Event) (*pipeline.TriggerEvent, bool) {
	c := ev.Change
	if c == nil || c.Number <= 0 {
		return nil, false
	}
	project := firstOf(string(c.Project), string(ev.Project))
	if project == "" {
		return nil, false
	}
	snap := &pipeline.Change{
		Project:  project,
		Branch:   strings.TrimPrefix(c.Branch, "refs/heads/"),
		Number:   c.Number.Int(),
		ChangeID: firstOf(c.ID, ev.ChangeKey.String()),
		Subject:  c.Subject,
		Owner:    c.Owner.username(),
		URL:      c.URL,
		Status:   statusOf(ev),
		WIP:      c.WIP,
		Private:  c.Private,
	}
	if ps := ev.PatchSet; ps != nil {
		if ps.Number > 0 {
			snap.Patchset = ps.Number.Int()
		}
		snap.Commit = ps.Revision
		snap.Ref = ps.Ref
		if snap.Ref == "" && snap.Patchset > 0 {
			snap.Ref = fmt.Sprintf("refs/changes/%02d/%d/%d", snap.Number%100, snap.Number, snap.Patchset)
		}
		for _, a := range ps.Approvals {
			if label := labelOf(a); label != "" {
				snap.Approvals = append(snap.Approvals, pipeline.Approval{Label: label, Value: a.Value.Int(), By: a.By.username()})
			}
		}
	}
	te := &pipeline.TriggerEvent{
		Type:      ev.Type,
		Project:   project,
		Branch:    snap.Branch,
		Change:    snap,
		Patchset:  snap.Patchset,
		Account:   actorOf(ev).username(),
		Comment:   ev.Comment,
		Approvals: eventApprovals(ev),
	}
	if ev.Type == TypeChangeMerged {
		te.NewRev = ev.NewRev
	}
	return te, true
}

// statusOf is the change's status after the event. The event type wins
// where it implies one (a change-merged is MERGED whatever its change
// attribute says); a deleted change, which can never merge, is reported as
// ABANDONED, the nearest status the core knows. Old servers omit the status:
// a new patchset then implies NEW, other events leave it unknown (""), which
// the core reads as open. Gerrit 2.x drafts are open: NEW.
func statusOf(ev *Event) pipeline.Status {
	switch ev.Type {
	case TypeChangeMerged:
		return pipeline.StatusMerged
	case TypeChangeAbandoned, TypeChangeDeleted:
		return pipeline.StatusAbandoned
	case TypeChangeRestored:
		return pipeline.StatusNew
	}
	switch s := strings.ToUpper(ev.Change.Status); s {
	case "":
		if ev.Type == TypePatchsetCreated || ev.Type == TypeDraftPublished {
			return pipeline.StatusNew
		}
		return ""
	case "DRAFT":
		return pipeline.StatusNew
	default:
		return pipeline.Status(s)
	}
}

// actorOf returns the account that caused the event.
func actorOf(ev *Event) *Account {
	switch ev.Type {
	case TypePatchsetCreated, TypeDraftPublished:
		if ev.Uploader == nil && ev.PatchSet != nil {
			return ev.PatchSet.Uploader
		}
		return ev.Uploader
	case TypeCommentAdded:
		return ev.Author
	case TypeChangeMerged, TypeMergeFailed:
		return ev.Submitter
	case TypeChangeAbandoned:
		return ev.Abandoner
	case TypeChangeRestored:
		return ev.Restorer
	case TypeTopicChanged, TypeWIPStateChanged, TypePrivateStateChanged, TypeAssigneeChanged:
		return ev.Changer
	case TypeHashtagsChanged:
		return ev.Editor
	case TypeReviewerAdded:
		return ev.Adder
	case TypeReviewerDeleted, TypeVoteDeleted:
		return ev.Remover
	case TypeChangeDeleted:
		return ev.Deleter
	}
	return nil
}

// legacyLabels maps the category ids of Gerrit before 2.6 to label names.
var legacyLabels = map[string]string{"CRVW": "Code-Review", "VRIF": "Verified", "SUBM": "Submit"}

func labelOf(a Approval) string {
	label := firstOf(a.Type, a.Description)
	if l, ok := legacyLabels[label]; ok {
		return l
	}
	return label
}

// eventApprovals tells newly granted votes from repeated ones.
//
// A comment-added carries every current vote of its author, not only those
// the comment changed. Gerrit 2.13 and later add oldValue to the labels this
// comment changed: such a vote is new iff oldValue != value, and OldValue is
// set to oldValue. Older servers never send oldValue. A vote without one is
// new only if the comment's first line, which Gerrit writes as "Patch Set N:
// Code-Review+2 Verified-1" (or "Label=+2", "-Label" for a removal, or
// "Uploaded patch set N: ..." for a vote cast on push), names that label
// with that value; otherwise it is a repeat and OldValue is set to Value, so
// that a plain comment ("recheck") on an approved change does not trigger
// the gate again. Servers before 2.6 wrote value descriptions ("Looks good
// to me, approved") instead: their votes all read as repeats.
func eventApprovals(ev *Event) []pipeline.EventApproval {
	if len(ev.Approvals) == 0 {
		return nil
	}
	named := headerVotes(ev.Comment)
	out := make([]pipeline.EventApproval, 0, len(ev.Approvals))
	for _, a := range ev.Approvals {
		label := labelOf(a)
		if label == "" {
			continue
		}
		ea := pipeline.EventApproval{Label: label, Value: a.Value.Int()}
		if a.OldValue != nil {
			old := a.OldValue.Int()
			ea.OldValue = &old
		} else if v, ok := named[strings.ToLower(label)]; !ok || v != ea.Value {
			same := ea.Value
			ea.OldValue = &same
		}
		out = append(out, ea)
	}
	return out
}

var (
	headerRE = regexp.MustCompile(`^(?:Patch Set|Uploaded patch set) [0-9]+:(.*)$`)
	voteRE   = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_-]*?)(?:=([+-]?[0-9]+)|([+-][0-9]+))$`)
	unvoteRE = regexp.MustCompile(`^-([A-Za-z][A-Za-z0-9_-]*)$`)
)

// headerVotes returns the votes the first line of a comment names, by
// lower-cased label.
func headerVotes(comment string) map[string]int {
	first, _, _ := strings.Cut(comment, "\n")
	m := headerRE.FindStringSubmatch(strings.TrimSpace(first))
	if m == nil {
		return nil
	}
	votes := map[string]int{}
	for _, tok := range strings.Fields(m[1]) {
		tok = strings.TrimRight(tok, ".,;")
		if v := voteRE.FindStringSubmatch(tok); v != nil {
			n, err := strconv.Atoi(firstOf(v[2], v[3]))
			if err == nil {
				votes[strings.ToLower(v[1])] = n
			}
		} else if v := unvoteRE.FindStringSubmatch(tok); v != nil {
			votes[strings.ToLower(v[1])] = 0
		}
	}
	return votes
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
