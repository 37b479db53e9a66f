package merger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Config configures a Merger.
type Config struct {
	// Dir is the state directory: mirrors live in Dir/repos/<project>.git
	// and survive restarts.
	Dir string
	// Source returns where to clone and fetch a project from: an http(s)
	// URL of Gerrit's git endpoint, or a local path (tests).
	Source func(project string) string
	// User and PasswordFile are HTTP Basic credentials for Source. The
	// password is read from the file for each fetch and handed to git in
	// its environment, never on a command line.
	User, PasswordFile string
	// Parallel bounds the git work running at once across repositories
	// (default 4). Within a repository, work is serialised by its lock.
	Parallel int
	// Timeout bounds each git command (default 10 minutes).
	Timeout time.Duration
	// Policy returns how Gerrit submits to a project. Nil means
	// MERGE_IF_NECESSARY with content merges everywhere.
	Policy func(ctx context.Context, project string) (Policy, error)
	// Logger receives clone, re-clone and housekeeping lines.
	Logger *slog.Logger
	// Git is the git binary (default: "git" on PATH); it must be 2.38 or
	// newer for merge-tree --write-tree.
	Git string
}

// Merger owns the repository cache and the speculative states.
type Merger struct {
	cfg      Config
	git      *git
	log      *slog.Logger
	reposDir string
	tmpDir   string
	slots    chan struct{}

	mu       sync.Mutex
	repos    map[string]*repo
	records  map[string]*record
	inflight map[string]*flight
	seq      uint64
}

// maxRecords bounds the buildset results kept for reuse when the caller
// forgets to Release them.
const maxRecords = 20000

// record is a prepared buildset: its change list and the speculative
// commit of each project+branch, kept so the item behind can start there.
type record struct {
	seq      uint64
	changes  []pipeline.Spec
	states   map[pbKey]string
	projects []string
}

type pbKey struct{ project, label string }

// flight is a Prepare in progress; items behind wait for it to reuse it.
type flight struct {
	seq      uint64
	done     chan struct{}
	released bool // guarded by Merger.mu
}

// New checks git and creates the state directory.
func New(cfg Config) (*Merger, error) {
	if cfg.Dir == "" {
		return nil, errors.New("merger: Config.Dir is required")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	bin := cfg.Git
	if bin == "" {
		bin = "git"
	}
	bin, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("merger: %w", err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	m := &Merger{
		cfg:      cfg,
		log:      cfg.Logger,
		reposDir: filepath.Join(dir, "repos"),
		tmpDir:   filepath.Join(dir, "tmp"),
		slots:    make(chan struct{}, cfg.Parallel),
		repos:    map[string]*repo{},
		records:  map[string]*record{},
		inflight: map[string]*flight{},
	}
	home := filepath.Join(dir, "home")
	// Leftovers of clones interrupted by a crash.
	if err := os.RemoveAll(m.tmpDir); err != nil {
		return nil, err
	}
	for _, d := range []string{m.reposDir, m.tmpDir, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("merger: %w", err)
		}
	}
	m.git = &git{bin: bin, home: home, timeout: cfg.Timeout, user: cfg.User, passwordFile: cfg.PasswordFile}
	out, err := m.git.exec(context.Background(), opts{cwd: home}, "version")
	if err != nil {
		return nil, fmt.Errorf("merger: %w", err)
	}
	if v := firstLine(out); !gitRecentEnough(v) {
		return nil, fmt.Errorf("merger: %s is too old: merge-tree --write-tree needs git 2.38", v)
	}
	return m, nil
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)`)

func gitRecentEnough(v string) bool {
	mm := versionRE.FindStringSubmatch(v)
	if mm == nil {
		return false
	}
	major, _ := strconv.Atoi(mm[1])
	minor, _ := strconv.Atoi(mm[2])
	return major > 2 || major == 2 && minor >= 38
}

// Prepare builds the speculative state of changes, in order, and writes it
// to refs/seakeeper/<buildset> in every project the list touches.
//
// Per project and branch, each change moves the speculative tip the way
// the project's submit type would (see Policy): fast-forward; a merge commit
// with parents [tip, change]; or the change rebased (cherry-picked) onto the
// tip with its parent as merge base. A change already contained in the tip
// is a no-op; a change that is a merge commit is merged even under the
// rebase and cherry-pick types, as Gerrit does; a cherry-pick that would
// be empty leaves the tip alone, as Gerrit does. With NoContentMerge, a
// file changed on both sides is a conflict. A ref update (Number 0) sets
// its branch (or tag) to its commit.
//
// The starting point is the branch tips as fetched now or, when base is a
// buildset prepared earlier (by this process) whose change list is a prefix
// of changes, that buildset's result: a queue then costs one step per item,
// and all items of a queue stand on the same branch tips. A base still being
// prepared is waited for.
//
// Refs: refs/seakeeper/<buildset> in a project is the state of the branch
// of the project's last change in the list. When the buildset touches
// several branches of one project, each of them also gets
// refs/seakeeper-branch/<buildset>/<branch>. The commits are listed in the
// result either way.
//
// Speculative commits are deterministic: their committer is "Seakeeper
// <seakeeper@invalid>" dated with the change commit's committer date; a
// merge commit is authored by the change's committer, with the message
// `Merge "<subject>"`; a rebased or cherry-picked commit keeps the change's
// author, author date and message. The same inputs give the same commit
// ids. Gerrit commits as its server identity at the submit time, makes the
// submitter the author of merge commits and adds Reviewed-on/Reviewed-by
// footers to rebased and cherry-picked commits, so its commit ids differ;
// the trees are the same.
//
// A change that does not merge gives a Conflict naming it, with the files
// merge-tree reported (the first conflicting change in list order); a
// missing ref or object, or a broken mirror, gives an Error. Neither leaves
// refs behind. Projects are prepared in parallel; Prepare is safe for
// concurrent use, and preparing a buildset again gives the same result.
func (m *Merger) Prepare(ctx context.Context, buildset string, changes []pipeline.Spec, base string) pipeline.MergeResult {
	res := pipeline.MergeResult{BuildSet: buildset}
	if err := validateRequest(buildset, changes); err != nil {
		res.Error = err.Error()
		return res
	}
	fl := m.begin(buildset)
	defer m.end(buildset, fl)
	plans := makePlans(changes, m.reuse(ctx, fl, buildset, base, changes))

	results := make([]projectResult, len(plans))
	var wg sync.WaitGroup
	for i := range plans {
		wg.Go(func() { results[i] = m.prepareProject(ctx, buildset, plans[i]) })
	}
	wg.Wait()

	var errs []error
	var conflict *pipeline.Conflict
	conflictAt := len(changes)
	states := map[pbKey]string{}
	for _, pr := range results {
		switch {
		case pr.err != nil:
			errs = append(errs, pr.err)
		case pr.conflict != nil && pr.conflictAt < conflictAt:
			conflict, conflictAt = pr.conflict, pr.conflictAt
		}
		for label, id := range pr.states {
			states[pbKey{pr.project, label}] = id
		}
	}
	ok := len(errs) == 0 && conflict == nil
	var rec *record
	if ok {
		rec = &record{seq: fl.seq, changes: append([]pipeline.Spec(nil), changes...), states: states}
		for _, p := range plans {
			rec.projects = append(rec.projects, p.project)
		}
	}
	// Checked and remembered at once: a Release before this sees the
	// flight, one after it sees the record.
	m.mu.Lock()
	released := fl.released
	if ok && !released {
		m.remember(buildset, rec)
	}
	m.mu.Unlock()
	if !ok || released {
		m.deleteRefs(context.WithoutCancel(ctx), buildset, results)
	}
	switch {
	case len(errs) > 0:
		res.Error = errors.Join(errs...).Error()
		return res
	case conflict != nil:
		res.Conflict = conflict
		return res
	}
	seen := map[pbKey]bool{}
	for _, s := range changes {
		k := pbKey{s.Project, label(s)}
		if !seen[k] {
			seen[k] = true
			res.Commits = append(res.Commits, pipeline.ProjectCommit{Project: k.project, Branch: k.label, Commit: states[k]})
		}
	}
	return res
}

func validateRequest(buildset string, changes []pipeline.Spec) error {
	if buildset == "" || strings.Contains(buildset, "/") || !validRef(primaryRef(buildset)) || len(buildset) > 200 {
		return fmt.Errorf("invalid buildset id %q", buildset)
	}
	if len(changes) == 0 {
		return errors.New("no changes to prepare")
	}
	for _, s := range changes {
		if err := validProject(s.Project); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		if s.Ref == "" && s.Commit == "" {
			return fmt.Errorf("%s: neither ref nor commit", s)
		}
		if s.Ref != "" && !validRef(s.Ref) {
			return fmt.Errorf("%s: invalid ref %q", s, s.Ref)
		}
		if s.Commit != "" && !isHex(s.Commit) {
			return fmt.Errorf("%s: invalid commit %q", s, s.Commit)
		}
		if s.Number != 0 && (s.Branch == "" || !validRef("refs/heads/"+s.Branch)) {
			return fmt.Errorf("%s: invalid branch %q", s, s.Branch)
		}
		if !validRef(branchRef(buildset, label(s))) {
			return fmt.Errorf("%s: cannot name a ref after branch %q", s, label(s))
		}
	}
	return nil
}

func isHex(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// label names the project+branch a spec moves: its branch, or the ref of a
// ref update that is not on a branch (tags).
func label(s pipeline.Spec) string {
	if s.Branch != "" {
		return s.Branch
	}
	return s.Ref
}

func primaryRef(buildset string) string { return "refs/seakeeper/" + buildset }

func branchRef(buildset, label string) string {
	return "refs/seakeeper-branch/" + buildset + "/" + label
}

func (m *Merger) begin(buildset string) *flight {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	fl := &flight{seq: m.seq, done: make(chan struct{})}
	m.inflight[buildset] = fl
	return fl
}

func (m *Merger) end(buildset string, fl *flight) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight[buildset] == fl {
		delete(m.inflight, buildset)
	}
	close(fl.done)
}

// reuse returns base's record when its change list is a prefix of changes.
// It waits for a base that started before this Prepare and is still
// running (never for a later one, so waits cannot form a cycle).
func (m *Merger) reuse(ctx context.Context, fl *flight, buildset, base string, changes []pipeline.Spec) *record {
	if base == "" || base == buildset {
		return nil
	}
	m.mu.Lock()
	bf := m.inflight[base]
	m.mu.Unlock()
	if bf != nil && bf.seq < fl.seq {
		select {
		case <-bf.done:
		case <-ctx.Done():
			return nil
		}
	}
	m.mu.Lock()
	rec := m.records[base]
	m.mu.Unlock()
	if rec == nil || len(rec.changes) > len(changes) {
		return nil
	}
	for i, s := range rec.changes {
		if s != changes[i] {
			return nil
		}
	}
	return rec
}

// remember stores a record; m.mu is held.
func (m *Merger) remember(buildset string, rec *record) {
	m.records[buildset] = rec
	if len(m.records) <= maxRecords {
		return
	}
	oldest, seq := "", rec.seq
	for bs, r := range m.records {
		if r.seq < seq {
			oldest, seq = bs, r.seq
		}
	}
	delete(m.records, oldest)
}
