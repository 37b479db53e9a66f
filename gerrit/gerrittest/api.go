package gerrittest

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// Error is a refusal: the HTTP status and the plain-text message Gerrit
// answers with. The Go API returns the same *Error the REST API answers.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func errf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// serverIdent is the committer of commits Gerrit itself makes.
func (s *Server) serverIdent() ident {
	return ident{name: "Gerrit Code Review", email: "gerrit@example.com", when: s.now()}
}

func (a *account) ident(s *Server) ident {
	return ident{name: a.Name, email: a.Email, when: s.now()}
}

func (s *Server) projectLocked(name string) (*project, error) {
	if p := s.projects[name]; p != nil {
		return p, nil
	}
	return nil, errf(http.StatusNotFound, "Not found: %s", name)
}

func (s *Server) changeLocked(project string, number int) (*change, error) {
	c := s.changes[number]
	if c == nil || (project != "" && c.project.name != project) {
		return nil, errf(http.StatusNotFound, "Not found: %s~%d", project, number)
	}
	return c, nil
}

// ChangeSpec describes a change to create.
type ChangeSpec struct {
	Project string
	Branch  string // default Options.DefaultBranch
	Owner   string // username; default "developer"
	Subject string // default "Change <number>"
	Body    string // commit message body, before the footers
	// Files written on top of the parent's tree. Nil Files and Delete
	// write change-<number>.txt, so that every change has a diff.
	Files  map[string]string
	Delete []string
	// ParentChange makes the current patchset of that open change the git
	// parent (a relation chain). Parent names a commit instead. Default:
	// the branch tip.
	ParentChange int
	Parent       string
	// DependsOn are Depends-On footer values (change URLs or Change-Ids).
	DependsOn []string
	ChangeID  string // default derived from project and number
	Topic     string
	WIP       bool
	Private   bool
}

// CreateChange uploads a new change with one patchset and publishes
// patchset-created.
func (s *Server) CreateChange(spec ChangeSpec) (*Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(spec.Project)
	if err != nil {
		return nil, err
	}
	if spec.Branch == "" {
		spec.Branch = s.opts.DefaultBranch
	}
	spec.Branch = strings.TrimPrefix(spec.Branch, "refs/heads/")
	if spec.Owner == "" {
		spec.Owner = "developer"
	}
	owner := s.addAccount(spec.Owner, "", "")
	number := s.nextChange
	parent, err := s.parentLocked(p, spec.Branch, spec.ParentChange, spec.Parent)
	if err != nil {
		return nil, err
	}
	if spec.Subject == "" {
		spec.Subject = fmt.Sprintf("Change %d", number)
	}
	if spec.ChangeID == "" {
		spec.ChangeID = newChangeID(p.name, number, spec.Subject)
	}
	if spec.Files == nil && spec.Delete == nil {
		spec.Files = map[string]string{fmt.Sprintf("change-%d.txt", number): fmt.Sprintf("change %d\n", number)}
	}
	tree, err := p.repo.writeTree(parent, spec.Files, spec.Delete)
	if err != nil {
		return nil, err
	}
	c := &change{number: number, project: p, branch: spec.Branch, changeID: spec.ChangeID,
		topic: spec.Topic, owner: owner, status: statusNew, wip: spec.WIP, private: spec.Private,
		created: s.now(), subject: spec.Subject, body: spec.Body, dependsOn: spec.DependsOn}
	rev, err := p.repo.commitTree(tree, []string{parent}, c.commitMessage(), owner.ident(s), owner.ident(s))
	if err != nil {
		return nil, err
	}
	ps, err := s.addPatchsetLocked(c, rev, owner, "REWORK", false)
	if err != nil {
		return nil, err
	}
	s.nextChange++
	s.changes[number] = c
	ev := s.changeEvent(gerrit.TypePatchsetCreated, c, ps)
	ev.Uploader = accountAttr(owner)
	s.emit(ev)
	return c.snapshot(), nil
}

// commitMessage builds a commit message: subject, body, then the footers
// Depends-On and Change-Id.
func (c *change) commitMessage() string {
	var b strings.Builder
	b.WriteString(c.subject + "\n\n")
	if body := strings.TrimSpace(c.body); body != "" {
		b.WriteString(body + "\n\n")
	}
	for _, d := range c.dependsOn {
		b.WriteString("Depends-On: " + d + "\n")
	}
	b.WriteString("Change-Id: " + c.changeID + "\n")
	return b.String()
}

// parentLocked resolves the git parent of a new commit.
func (s *Server) parentLocked(p *project, branch string, parentChange int, parent string) (string, error) {
	switch {
	case parentChange != 0:
		pc, err := s.changeLocked(p.name, parentChange)
		if err != nil {
			return "", err
		}
		return pc.current().rev, nil
	case parent != "":
		rev, err := p.repo.resolve(parent)
		if err == nil && rev == "" {
			err = errf(http.StatusBadRequest, "parent %s not found", parent)
		}
		return rev, err
	}
	rev, err := p.repo.resolve("refs/heads/" + branch)
	if err == nil && rev == "" {
		err = errf(http.StatusBadRequest, "Branch refs/heads/%s does not exist.", branch)
	}
	return rev, err
}

// addPatchsetLocked records rev as the next patchset of c: its ref, its
// statistics, the "Uploaded patch set N." message and copied votes
// (every vote when copyAll, else the minimum votes of CopyMinScore
// labels).
func (s *Server) addPatchsetLocked(c *change, rev string, uploader *account, kind string, copyAll bool) (*patchset, error) {
	r := c.project.repo
	cd, err := r.readCommit(rev)
	if err != nil {
		return nil, err
	}
	ins, del, files, err := r.diffStats(rev)
	if err != nil {
		return nil, err
	}
	ps := &patchset{number: len(c.patchsets) + 1, rev: rev, parents: cd.parents, uploader: uploader,
		created: s.now(), kind: kind, commit: cd, ins: ins, del: del, files: files}
	for _, p := range cd.parents {
		pc, err := r.readCommit(p)
		if err != nil {
			return nil, err
		}
		ps.parentSubjects = append(ps.parentSubjects, subjectOf(pc.message))
	}
	if err := r.updateRef(ps.ref(c.number), rev, zeroRev); err != nil {
		return nil, err
	}
	if len(c.patchsets) > 0 {
		for _, v := range c.current().votes {
			l, ok := c.project.label(v.label)
			if copyAll || (ok && l.CopyMinScore && v.value == l.Min && v.value < 0) {
				cp := *v
				ps.votes = append(ps.votes, &cp)
			}
		}
	}
	c.patchsets = append(c.patchsets, ps)
	c.updated = ps.created
	if kind != "" {
		s.addMessageLocked(c, uploader, fmt.Sprintf("Uploaded patch set %d.", ps.number), "", ps.number)
	}
	return ps, nil
}

func (s *Server) addMessageLocked(c *change, who *account, text, tag string, psNumber int) {
	s.msgSeq++
	now := s.now()
	c.messages = append(c.messages, &message{id: fmt.Sprintf("%x", s.msgSeq), author: who, date: now,
		text: text, tag: tag, patchset: psNumber})
	c.updated = now
}

// PatchsetSpec describes a new patchset of a change.
type PatchsetSpec struct {
	Uploader string // default the change owner
	// Files and Delete apply on top of the previous patchset's tree.
	Files  map[string]string
	Delete []string
	// Subject, Body and DependsOn replace the commit message parts when
	// non-empty (non-nil for DependsOn).
	Subject   string
	Body      string
	DependsOn []string
	// Rebase moves the patchset onto the branch tip; ParentChange or
	// Parent onto that change or commit. Without files, a rebase is a
	// TRIVIAL_REBASE.
	Rebase       bool
	ParentChange int
	Parent       string
}

// NewPatchset uploads a new patchset and publishes patchset-created. The
// kind is NO_CODE_CHANGE (same tree and parent), TRIVIAL_REBASE (only
// rebased) or REWORK. Minimum votes of CopyMinScore labels carry over.
func (s *Server) NewPatchset(project string, number int, spec PatchsetSpec) (*Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.changeLocked(project, number)
	if err != nil {
		return nil, err
	}
	if c.status != statusNew {
		return nil, errf(http.StatusConflict, "change %d closed", c.number)
	}
	uploader := c.owner
	if spec.Uploader != "" {
		uploader = s.addAccount(spec.Uploader, "", "")
	}
	r, old := c.project.repo, c.current()
	parent := old.parents[0]
	if spec.Rebase || spec.ParentChange != 0 || spec.Parent != "" {
		if parent, err = s.parentLocked(c.project, c.branch, spec.ParentChange, spec.Parent); err != nil {
			return nil, err
		}
	}
	tree := old.commit.tree
	if parent != old.parents[0] {
		var clean bool
		if tree, clean, err = r.pickTree(old.rev, parent); err != nil {
			return nil, err
		} else if !clean {
			return nil, errf(http.StatusConflict, "The change could not be rebased due to a conflict during merge.")
		}
	}
	if spec.Files != nil || spec.Delete != nil {
		if tree, err = r.writeTree(tree, spec.Files, spec.Delete); err != nil {
			return nil, err
		}
	}
	if spec.Subject != "" {
		c.subject = spec.Subject
	}
	if spec.Body != "" {
		c.body = spec.Body
	}
	if spec.DependsOn != nil {
		c.dependsOn = spec.DependsOn
	}
	kind := "REWORK"
	switch {
	case parent == old.parents[0] && tree == old.commit.tree:
		kind = "NO_CODE_CHANGE"
	case parent != old.parents[0] && spec.Files == nil && spec.Delete == nil:
		kind = "TRIVIAL_REBASE"
	}
	rev, err := r.commitTree(tree, []string{parent}, c.commitMessage(), old.commit.author, uploader.ident(s))
	if err != nil {
		return nil, err
	}
	if rev == old.rev {
		return nil, errf(http.StatusBadRequest, "no new changes")
	}
	ps, err := s.addPatchsetLocked(c, rev, uploader, kind, false)
	if err != nil {
		return nil, err
	}
	ev := s.changeEvent(gerrit.TypePatchsetCreated, c, ps)
	ev.Uploader = accountAttr(uploader)
	s.emit(ev)
	return c.snapshot(), nil
}

// Change returns a snapshot of a change.
func (s *Server) Change(project string, number int) (*Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.changeLocked(project, number)
	if err != nil {
		return nil, err
	}
	return c.snapshot(), nil
}

// Votes returns the votes on the current patchset of a change, in the
// order they were first cast; a vote reset to 0 stays with Value 0.
func (s *Server) Votes(project string, number int) ([]Vote, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.changeLocked(project, number)
	if err != nil {
		return nil, err
	}
	ps := c.current()
	var out []Vote
	for _, v := range ps.votes {
		out = append(out, Vote{Label: v.label, Value: v.value, User: v.by.Username, Date: v.date, Tag: v.tag, Patchset: ps.number})
	}
	return out, nil
}

// ChangeMessage is a message on a change.
type ChangeMessage struct {
	Author   string
	Text     string
	Tag      string
	Patchset int
}

// Messages returns the messages of a change, oldest first.
func (s *Server) Messages(project string, number int) ([]ChangeMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.changeLocked(project, number)
	if err != nil {
		return nil, err
	}
	var out []ChangeMessage
	for _, m := range c.messages {
		out = append(out, ChangeMessage{Author: m.author.Username, Text: m.text, Tag: m.tag, Patchset: m.patchset})
	}
	return out, nil
}

// LabelStatus is one label of a submit record.
type LabelStatus struct {
	Label  string
	Status string // OK, NEED, REJECT, MAY
	By     string // who decided OK or REJECT
}

// SubmitRecord evaluates the submit rule on the current patchset: status
// is OK, NOT_READY or CLOSED.
func (s *Server) SubmitRecord(project string, number int) (status string, labels []LabelStatus, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.changeLocked(project, number)
	if err != nil {
		return "", nil, err
	}
	recs := submitRecords(c.project, c.current())
	for _, r := range recs {
		ls := LabelStatus{Label: r.label, Status: r.status}
		if r.by != nil {
			ls.By = r.by.Username
		}
		labels = append(labels, ls)
	}
	switch {
	case c.status != statusNew:
		status = "CLOSED"
	case submittable(recs):
		status = "OK"
	default:
		status = "NOT_READY"
	}
	return status, labels, nil
}

// ChangeURL is the web URL of a change, the form Depends-On footers use.
func (s *Server) ChangeURL(project string, number int) string {
	return fmt.Sprintf("%s/c/%s/+/%d", s.url, project, number)
}
