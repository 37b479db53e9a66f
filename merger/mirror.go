package merger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// repo is one bare mirror of the cache. Its lock serialises every git
// command that runs in it; checked says it was validated since the process
// started (or since an operation in it failed).
type repo struct {
	project string
	dir     string
	lock    chan struct{}

	// Fields below are guarded by lock.
	checked bool
	dirty   bool // changed since the last Maintain
}

// fetchError is a fetch from the source that failed: the source is
// unreachable or does not have the ref. It says nothing about the mirror.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// validProject rejects project names that would escape the cache or nest
// one mirror inside another.
func validProject(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("invalid project name %q", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".git") {
			return fmt.Errorf("invalid project name %q", p)
		}
		for _, r := range part {
			if r < 0x20 || r == 0x7f || r == '\\' {
				return fmt.Errorf("invalid project name %q", p)
			}
		}
	}
	return nil
}

// validRef accepts the ref names the merger fetches and writes: under
// refs/, and well-formed by git's rules (a subset of check-ref-format).
func validRef(ref string) bool {
	if !strings.HasPrefix(ref, "refs/") || strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") ||
		strings.Contains(ref, "..") || strings.Contains(ref, "//") || strings.Contains(ref, "@{") {
		return false
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	for _, r := range ref {
		if r <= 0x20 || r == 0x7f || strings.ContainsRune("~^:?*[\\", r) {
			return false
		}
	}
	return true
}

func (m *Merger) repoDir(project string) string {
	return filepath.Join(m.reposDir, filepath.FromSlash(project)+".git")
}

// repo returns the cache entry of project, creating it (not the mirror).
func (m *Merger) repo(project string) (*repo, error) {
	if err := validProject(project); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.repos[project]
	if r == nil {
		r = &repo{project: project, dir: m.repoDir(project), lock: make(chan struct{}, 1)}
		m.repos[project] = r
	}
	return r, nil
}

// withRepo runs fn with project's mirror locked, present and validated, in
// one of the Parallel slots. The repository lock is taken before the slot,
// so a slot is never held while waiting for a lock.
func (m *Merger) withRepo(ctx context.Context, project string, fn func(r *repo) error) error {
	return m.locked(ctx, project, true, fn)
}

// withMirror is withRepo for housekeeping: the mirror is neither cloned
// nor validated, and fn does not run when there is no mirror.
func (m *Merger) withMirror(ctx context.Context, project string, fn func(r *repo) error) error {
	return m.locked(ctx, project, false, func(r *repo) error {
		if _, err := os.Stat(r.dir); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fn(r)
	})
}

func (m *Merger) locked(ctx context.Context, project string, ensure bool, fn func(r *repo) error) error {
	r, err := m.repo(project)
	if err != nil {
		return err
	}
	select {
	case r.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.lock }()
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-m.slots }()
	if ensure {
		if err := m.ensure(ctx, r); err != nil {
			return err
		}
	}
	err = fn(r)
	var fe *fetchError
	var ge *gitError
	if errors.As(err, &ge) && !errors.As(err, &fe) {
		// A git command failed inside the mirror: check it next time.
		r.checked = false
	}
	return err
}

// ensure makes r's mirror exist and, once per process (or after a failure),
// checks it: a mirror that git does not recognise or whose refs point at
// missing objects is removed and cloned again.
func (m *Merger) ensure(ctx context.Context, r *repo) error {
	if r.checked {
		return nil
	}
	if _, err := os.Stat(r.dir); errors.Is(err, fs.ErrNotExist) {
		if err := m.clone(ctx, r); err != nil {
			return err
		}
		r.checked = true
		return nil
	}
	if err := m.removeStaleLocks(r); err != nil {
		return err
	}
	err := m.validate(ctx, r)
	if err == nil {
		r.checked = true
		return nil
	}
	if exitCode(err) < 0 {
		return err // a timeout says nothing about the mirror
	}
	m.log.Warn("merger: mirror is broken, cloning it again", "project", r.project, "dir", r.dir, "err", err)
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("removing broken mirror of %s: %w", r.project, err)
	}
	if err := m.clone(ctx, r); err != nil {
		return err
	}
	r.checked = true
	return nil
}

// removeStaleLocks deletes the *.lock files a git command killed midway
// (the daemon SIGKILLed) left in r's mirror: git refuses to touch a ref, the
// index or packed-refs while its lock file exists, so every later prepare
// would fail. They are stale by construction: the merger is the only
// writer of its mirrors (the store's lock keeps a second daemon off the
// state directory), and r's lock is held, so no git command of this
// process runs in the mirror either.
func (m *Merger) removeStaleLocks(r *repo) error {
	return filepath.WalkDir(r.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".lock") {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing stale git lock in the mirror of %s: %w", r.project, err)
			}
			m.log.Warn("merger: removed a stale git lock (a git command was killed midway)", "project", r.project, "file", path)
		}
		return nil
	})
}

func (m *Merger) validate(ctx context.Context, r *repo) error {
	out, err := m.git.run(ctx, r.dir, "rev-parse", "--is-bare-repository")
	if err != nil {
		return err
	}
	if firstLine(out) != "true" {
		return &gitError{args: []string{"rev-parse"}, code: 1, stderr: "not a bare repository"}
	}
	_, err = m.git.run(ctx, r.dir, "fsck", "--connectivity-only", "--no-dangling", "--no-progress")
	return err
}

// clone makes a new mirror next to the cache and renames it into place, so
// an interrupted clone never leaves a half mirror behind.
func (m *Merger) clone(ctx context.Context, r *repo) error {
	url, err := m.source(r.project)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(m.tmpDir, "clone-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "mirror.git")
	m.log.Info("merger: cloning mirror", "project", r.project)
	if _, err := m.git.exec(ctx, opts{cwd: tmp, auth: true}, "clone", "--bare", "--no-tags", "--quiet", "--", url, dst); err != nil {
		return &fetchError{fmt.Errorf("cloning %s: %w", r.project, err)}
	}
	if err := os.MkdirAll(filepath.Dir(r.dir), 0o755); err != nil {
		return err
	}
	if err := os.Rename(dst, r.dir); err != nil {
		return fmt.Errorf("installing mirror of %s: %w", r.project, err)
	}
	r.dirty = true
	return nil
}

func (m *Merger) source(project string) (string, error) {
	if m.cfg.Source == nil {
		return "", errors.New("merger: no Source configured")
	}
	url := m.cfg.Source(project)
	if url == "" {
		return "", fmt.Errorf("merger: no source for project %s", project)
	}
	return url, nil
}

// fetch updates refs of r from the source, each ref to the same name
// (+src:src): branch tips, change refs, refs/meta/config.
func (m *Merger) fetch(ctx context.Context, r *repo, refs []string) error {
	if len(refs) == 0 {
		return nil
	}
	url, err := m.source(r.project)
	if err != nil {
		return err
	}
	refs = append([]string(nil), refs...)
	sort.Strings(refs)
	args := []string{"fetch", "--no-tags", "--no-write-fetch-head", "--quiet", "--", url}
	prev := ""
	for _, ref := range refs {
		if ref != prev {
			args = append(args, "+"+ref+":"+ref)
		}
		prev = ref
	}
	r.dirty = true
	if _, err := m.git.exec(ctx, opts{dir: r.dir, auth: true}, args...); err != nil {
		return &fetchError{fmt.Errorf("fetching %s from %s: %w", strings.Join(refs, " "), r.project, err)}
	}
	return nil
}

// mirrors lists the projects that have a mirror on disk.
func (m *Merger) mirrors() ([]string, error) {
	var out []string
	err := filepath.WalkDir(m.reposDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasSuffix(d.Name(), ".git") && path != m.reposDir {
			rel, err := filepath.Rel(m.reposDir, path)
			if err != nil {
				return err
			}
			out = append(out, strings.TrimSuffix(filepath.ToSlash(rel), ".git"))
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}
