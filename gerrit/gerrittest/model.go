package gerrittest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// SubmitType is a project's submit type, as Gerrit spells it.
type SubmitType string

// The submit types Gerrit offers. Each is performed for real on the bare
// repository (see Submit).
const (
	MergeIfNecessary  SubmitType = "MERGE_IF_NECESSARY"
	MergeAlways       SubmitType = "MERGE_ALWAYS"
	FastForwardOnly   SubmitType = "FAST_FORWARD_ONLY"
	RebaseIfNecessary SubmitType = "REBASE_IF_NECESSARY"
	RebaseAlways      SubmitType = "REBASE_ALWAYS"
	CherryPick        SubmitType = "CHERRY_PICK"
)

func (t SubmitType) valid() bool {
	switch t {
	case MergeIfNecessary, MergeAlways, FastForwardOnly, RebaseIfNecessary, RebaseAlways, CherryPick:
		return true
	}
	return false
}

// LabelFunction is how a label takes part in the submit rule, as in
// Gerrit's label functions.
type LabelFunction string

// Label functions. MaxWithBlock (the default) needs the label's maximum
// value and is blocked by its minimum; MaxNoBlock needs the maximum only;
// AnyWithBlock is blocked by the minimum only; NoBlock never blocks.
const (
	MaxWithBlock LabelFunction = "MaxWithBlock"
	MaxNoBlock   LabelFunction = "MaxNoBlock"
	AnyWithBlock LabelFunction = "AnyWithBlock"
	NoBlock      LabelFunction = "NoBlock"
)

// Label is a review label of a project.
type Label struct {
	Name     string
	Min, Max int
	// Function defaults to MaxWithBlock.
	Function LabelFunction
	// CopyMinScore keeps a minimum vote on new patchsets (Gerrit's
	// copyCondition is:MIN, default for Code-Review).
	CopyMinScore bool
}

// DefaultLabels are the labels of a new project unless Options.Labels says
// otherwise: Code-Review -2..+2 and Verified -2..+2, both MaxWithBlock. The
// default submit rule therefore needs Code-Review +2 and Verified +2 and no
// -2 on either.
func DefaultLabels() []Label {
	return []Label{
		{Name: "Code-Review", Min: -2, Max: 2, Function: MaxWithBlock, CopyMinScore: true},
		{Name: "Verified", Min: -2, Max: 2, Function: MaxWithBlock},
	}
}

func (l Label) function() LabelFunction {
	if l.Function == "" {
		return MaxWithBlock
	}
	return l.Function
}

// valueText describes a label value as Gerrit's LabelInfo.values does.
func (l Label) valueText(v int) string {
	if l.Name == "Code-Review" {
		switch v {
		case -2:
			return "This shall not be submitted"
		case -1:
			return "I would prefer this is not submitted as is"
		case 0:
			return "No score"
		case 1:
			return "Looks good to me, but someone else must approve"
		case 2:
			return "Looks good to me, approved"
		}
	}
	switch {
	case v == 0:
		return "No score"
	case v > 0:
		return "Looks good"
	}
	return "Does not look good"
}

// voteRange is a permitted voting range.
type voteRange struct{ min, max int }

func (r voteRange) contains(v int) bool { return v >= r.min && v <= r.max }

// Account is a Gerrit user.
type Account struct {
	ID       int
	Username string
	Name     string
	Email    string
}

type account struct {
	Account
	password string
}

type project struct {
	name       string
	submitType SubmitType
	labels     []Label
	// perms[label][username] is a permitted range; "*" is anyone not
	// listed. A label without entries may be voted in full by everyone.
	perms map[string]map[string]voteRange
	repo  *repo
}

func (p *project) label(name string) (Label, bool) {
	for _, l := range p.labels {
		if strings.EqualFold(l.Name, name) {
			return l, true
		}
	}
	return Label{}, false
}

// permitted returns the range user may vote on label; ok is false for an
// empty range.
func (p *project) permitted(l Label, user string) (voteRange, bool) {
	full := voteRange{l.Min, l.Max}
	m := p.perms[l.Name]
	if len(m) == 0 {
		return full, true
	}
	r, ok := m[user]
	if !ok {
		r, ok = m["*"]
	}
	if !ok {
		return voteRange{}, false
	}
	r.min, r.max = max(r.min, l.Min), min(r.max, l.Max)
	return r, r.min <= r.max
}

// Change statuses as REST spells them.
const (
	statusNew       = "NEW"
	statusMerged    = "MERGED"
	statusAbandoned = "ABANDONED"
)

type change struct {
	number    int
	project   *project
	branch    string
	changeID  string
	topic     string
	owner     *account
	status    string
	wip       bool
	private   bool
	created   time.Time
	updated   time.Time
	submitted time.Time
	submitter *account
	patchsets []*patchset
	messages  []*message
	// reviewers are everyone who voted or commented, in order.
	reviewers []*account
	// subject, body and dependsOn make the commit message of the next
	// patchset the Go API creates.
	subject, body string
	dependsOn     []string
	// mergedAs is the branch tip right after the change merged.
	mergedAs string
}

func (c *change) current() *patchset { return c.patchsets[len(c.patchsets)-1] }

func (c *change) addReviewer(a *account) {
	for _, r := range c.reviewers {
		if r == a {
			return
		}
	}
	c.reviewers = append(c.reviewers, a)
}

// id is the change's REST id, project~number with the project escaped.
func (c *change) id() string {
	return url.QueryEscape(c.project.name) + "~" + fmt.Sprint(c.number)
}

func (c *change) tripletID() string {
	return url.QueryEscape(c.project.name) + "~" + url.QueryEscape(c.branch) + "~" + c.changeID
}

type patchset struct {
	number   int
	rev      string
	parents  []string
	uploader *account
	created  time.Time
	kind     string
	commit   *commitData
	// parentSubjects are the subjects of parents, for CommitInfo.
	parentSubjects []string
	ins, del       int
	files          map[string]fileStat
	votes          []*vote // at most one per (label, account), in order of first vote
}

func (ps *patchset) subject() string { return subjectOf(ps.commit.message) }

func (ps *patchset) ref(number int) string {
	return fmt.Sprintf("refs/changes/%02d/%d/%d", number%100, number, ps.number)
}

func (ps *patchset) vote(label string, a *account) *vote {
	for _, v := range ps.votes {
		if v.label == label && v.by == a {
			return v
		}
	}
	return nil
}

type vote struct {
	label string
	value int
	by    *account
	date  time.Time
	tag   string
}

type message struct {
	id       string
	author   *account
	date     time.Time
	text     string
	tag      string
	patchset int
}

// fileStat is what RevisionInfo.files says about one file.
type fileStat struct {
	status   string // A, D, M (R/C are not detected)
	ins, del int
}

// Submit records, per label, as Gerrit computes them.
const (
	recOK     = "OK"
	recNeed   = "NEED"
	recReject = "REJECT"
	recMay    = "MAY"
)

type labelRecord struct {
	label  string
	status string
	by     *account // the vote that decided OK or REJECT
}

// submitRecords evaluates the submit rule on a patchset: for each label
// of the project in order, its status per the label function.
func submitRecords(p *project, ps *patchset) []labelRecord {
	var out []labelRecord
	for _, l := range p.labels {
		var maxBy, minBy *account
		for _, v := range ps.votes {
			if v.label != l.Name {
				continue
			}
			if v.value == l.Max && v.value > 0 && maxBy == nil {
				maxBy = v.by
			}
			if v.value == l.Min && v.value < 0 && minBy == nil {
				minBy = v.by
			}
		}
		fn := l.function()
		rec := labelRecord{label: l.Name}
		switch {
		case minBy != nil && (fn == MaxWithBlock || fn == AnyWithBlock):
			rec.status, rec.by = recReject, minBy
		case maxBy != nil && (fn == MaxWithBlock || fn == MaxNoBlock):
			rec.status, rec.by = recOK, maxBy
		case fn == MaxWithBlock || fn == MaxNoBlock:
			rec.status = recNeed
		default:
			rec.status = recMay
		}
		out = append(out, rec)
	}
	return out
}

// submittable reports whether no label needs or blocks.
func submittable(recs []labelRecord) bool {
	for _, r := range recs {
		if r.status == recNeed || r.status == recReject {
			return false
		}
	}
	return true
}

// Vote is a vote as the Go API reports it.
type Vote struct {
	Label    string
	Value    int
	User     string
	Date     time.Time
	Tag      string
	Patchset int
}

// Change is a snapshot of a change for the Go API.
type Change struct {
	Number   int
	Project  string
	Branch   string
	ChangeID string
	Subject  string
	Status   string // NEW, MERGED, ABANDONED
	Owner    string
	Topic    string
	WIP      bool
	Private  bool
	// Patchsets in order; the last is current.
	Patchsets []Patchset
	// MergedAs is the commit the branch pointed to right after this
	// change was submitted or merged from outside.
	MergedAs string
	// Submitter is who submitted it (or merged it from outside).
	Submitter string
}

// Current returns the current patchset.
func (c *Change) Current() Patchset { return c.Patchsets[len(c.Patchsets)-1] }

// Patchset is one patchset of a Change.
type Patchset struct {
	Number   int
	Revision string
	Ref      string
	Parents  []string
	Uploader string
	Kind     string
	Created  time.Time
}

func (c *change) snapshot() *Change {
	out := &Change{
		Number: c.number, Project: c.project.name, Branch: c.branch, ChangeID: c.changeID,
		Subject: c.current().subject(), Status: c.status, Owner: c.owner.Username,
		Topic: c.topic, WIP: c.wip, Private: c.private, MergedAs: c.mergedAs,
	}
	if c.submitter != nil {
		out.Submitter = c.submitter.Username
	}
	for _, ps := range c.patchsets {
		out.Patchsets = append(out.Patchsets, Patchset{
			Number: ps.number, Revision: ps.rev, Ref: ps.ref(c.number),
			Parents: append([]string(nil), ps.parents...), Uploader: ps.uploader.Username,
			Kind: ps.kind, Created: ps.created,
		})
	}
	return out
}

// newChangeID derives a deterministic Change-Id.
func newChangeID(project string, number int, salt string) string {
	h := sha1.Sum([]byte(fmt.Sprintf("%s\x00%d\x00%s", project, number, salt)))
	return "I" + hex.EncodeToString(h[:])
}

// subjectOf returns the first line of a commit message.
func subjectOf(msg string) string {
	s, _, _ := strings.Cut(strings.TrimLeft(msg, "\n"), "\n")
	return s
}

// formatValue formats a vote as Gerrit's messages do: +2, -1, 0.
func formatValue(v int) string {
	if v > 0 {
		return fmt.Sprintf("+%d", v)
	}
	return fmt.Sprint(v)
}
