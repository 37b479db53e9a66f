package gerrittest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// CreateProject creates a project: a bare repository whose default branch
// holds an empty initial commit, and refs/meta/config with project.config.
// It publishes project-created.
func (s *Server) CreateProject(name string, submitType SubmitType) error {
	if !submitType.valid() {
		return errf(http.StatusBadRequest, "invalid submit type %q", submitType)
	}
	first, _, _ := strings.Cut(name, "/")
	switch {
	case name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") ||
		strings.Contains(name, "..") || strings.HasSuffix(name, ".git") || strings.ContainsAny(name, "~ \t\n"):
		return errf(http.StatusBadRequest, "invalid project name %q", name)
	case first == "a" || first == "c" || first == "changes" || first == "projects" ||
		first == "accounts" || first == "config":
		return errf(http.StatusBadRequest, "project name %q clashes with the REST API", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.projects[name] != nil {
		return errf(http.StatusConflict, "Project already exists")
	}
	r, err := initBare(s.ctx, s.repoDir(name), s.opts.DefaultBranch)
	if err != nil {
		return err
	}
	p := &project{name: name, submitType: submitType, labels: append([]Label(nil), s.opts.Labels...),
		perms: map[string]map[string]voteRange{}, repo: r}
	id := s.serverIdent()
	head, err := r.commitTree(emptyTree, nil, "Initial empty repository\n", id, id)
	if err != nil {
		return err
	}
	if err := r.updateRef("refs/heads/"+s.opts.DefaultBranch, head, zeroRev); err != nil {
		return err
	}
	tree, err := r.writeTree("", map[string]string{"project.config": projectConfig(p)}, nil)
	if err != nil {
		return err
	}
	meta, err := r.commitTree(tree, nil, "Created project\n", id, id)
	if err != nil {
		return err
	}
	if err := r.updateRef("refs/meta/config", meta, zeroRev); err != nil {
		return err
	}
	s.projects[name] = p
	s.emit(&gerrit.Event{Type: gerrit.TypeProjectCreated, ProjectName: name, HeadName: "refs/heads/" + s.opts.DefaultBranch})
	return nil
}

// projectConfig renders an informational project.config; the fake reads
// its settings from memory, not from this file.
func projectConfig(p *project) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[submit]\n\taction = %s\n", strings.ToLower(strings.ReplaceAll(string(p.submitType), "_", " ")))
	for _, l := range p.labels {
		fmt.Fprintf(&b, "[label \"%s\"]\n\tfunction = %s\n\tdefaultValue = 0\n", l.Name, l.function())
		for v := l.Min; v <= l.Max; v++ {
			fmt.Fprintf(&b, "\tvalue = %s %s\n", formatValue(v), l.valueText(v))
		}
	}
	return b.String()
}

// SetSubmitType changes a project's submit type.
func (s *Server) SetSubmitType(project string, t SubmitType) error {
	if !t.valid() {
		return errf(http.StatusBadRequest, "invalid submit type %q", t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(project)
	if err == nil {
		p.submitType = t
	}
	return err
}

// SetLabels replaces a project's labels (and so its submit rule).
func (s *Server) SetLabels(project string, labels ...Label) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(project)
	if err == nil {
		p.labels = append([]Label(nil), labels...)
	}
	return err
}

// Grant sets the range user may vote on label in project; user "*" is
// everyone not granted explicitly. Once a label has a grant, users without
// one (and without "*") may not vote on it: their votes are refused with
// 403. Labels without grants may be voted in full by everyone.
func (s *Server) Grant(project, label, user string, minValue, maxValue int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(project)
	if err != nil {
		return err
	}
	l, ok := p.label(label)
	if !ok {
		return errf(http.StatusBadRequest, "label %q is not a configured label", label)
	}
	if p.perms[l.Name] == nil {
		p.perms[l.Name] = map[string]voteRange{}
	}
	p.perms[l.Name][user] = voteRange{minValue, maxValue}
	return nil
}

// AddAccount creates an account (or returns the existing one). A
// non-empty password lets it use the authenticated REST and git paths.
// The Go API creates accounts it is given by name on first use.
func (s *Server) AddAccount(username, name, email, password string) Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.addAccount(username, name, email)
	if password != "" {
		a.password = password
	}
	return a.Account
}

// Branch returns the commit a branch points to ("" if it does not exist).
func (s *Server) Branch(project, branch string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(project)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(branch, "refs/") {
		branch = "refs/heads/" + branch
	}
	return p.repo.resolve(branch)
}

// ReadFile returns a file of a commit (or ref) of a project.
func (s *Server) ReadFile(project, rev, path string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.projectLocked(project)
	if err != nil {
		return nil, err
	}
	data, found, err := p.repo.readFile(rev, path)
	if err == nil && !found {
		err = errf(http.StatusNotFound, "Not found: %s", path)
	}
	return data, err
}

// Projects lists the project names, sorted.
func (s *Server) Projects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.projects {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
