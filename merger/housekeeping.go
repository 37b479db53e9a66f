package merger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Release deletes the refs of finished or superseded buildsets and forgets
// their results. Buildsets this process did not prepare (before a restart)
// are left to Keep. A buildset still being prepared is cleaned up when its
// Prepare ends.
func (m *Merger) Release(ctx context.Context, buildsets ...string) error {
	byProject := map[string][]string{}
	m.mu.Lock()
	for _, bs := range buildsets {
		if fl := m.inflight[bs]; fl != nil {
			fl.released = true
		}
		rec := m.records[bs]
		if rec == nil {
			continue
		}
		delete(m.records, bs)
		for _, p := range rec.projects {
			byProject[p] = append(byProject[p], primaryRef(bs))
		}
		for k := range rec.states {
			byProject[k.project] = append(byProject[k.project], branchRef(bs, k.label))
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, p := range sortedKeys(byProject) {
		if err := m.removeRefs(ctx, p, byProject[p]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Keep deletes, in every mirror on disk, the speculative refs of buildsets
// that are not in live (nor being prepared), and forgets their results.
// The scheduler calls it after a restart and from time to time; it looks
// at every mirror, so it is slower than Release.
func (m *Merger) Keep(ctx context.Context, live []string) error {
	keep := map[string]bool{}
	for _, bs := range live {
		keep[bs] = true
	}
	m.mu.Lock()
	for bs := range m.inflight {
		keep[bs] = true
	}
	for bs := range m.records {
		if !keep[bs] {
			delete(m.records, bs)
		}
	}
	m.mu.Unlock()
	projects, err := m.mirrors()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range projects {
		err := m.withMirror(ctx, p, func(r *repo) error {
			out, err := m.git.run(ctx, r.dir, "for-each-ref", "--format=%(refname)", "refs/seakeeper/", "refs/seakeeper-branch/")
			if err != nil {
				return err
			}
			var b strings.Builder
			for _, ref := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if bs := buildsetOf(ref); bs != "" && !keep[bs] {
					fmt.Fprintf(&b, "delete %s\n", ref)
				}
			}
			if b.Len() == 0 {
				return nil
			}
			r.dirty = true
			_, err = m.git.exec(ctx, opts{dir: r.dir, stdin: []byte(b.String())}, "update-ref", "--stdin")
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// buildsetOf returns the buildset a speculative ref belongs to.
func buildsetOf(ref string) string {
	if bs, ok := strings.CutPrefix(ref, "refs/seakeeper/"); ok {
		return bs
	}
	if rest, ok := strings.CutPrefix(ref, "refs/seakeeper-branch/"); ok {
		bs, _, _ := strings.Cut(rest, "/")
		return bs
	}
	return ""
}

// Maintain runs `git gc --auto` in every mirror changed since the last
// call. The scheduler calls it periodically; git decides whether there is
// anything worth doing (loose objects, pack count), and gc only prunes
// unreachable objects older than two weeks.
func (m *Merger) Maintain(ctx context.Context) error {
	m.mu.Lock()
	repos := make([]*repo, 0, len(m.repos))
	for _, r := range m.repos {
		repos = append(repos, r)
	}
	m.mu.Unlock()
	sort.Slice(repos, func(i, j int) bool { return repos[i].project < repos[j].project })
	var errs []error
	for _, r := range repos {
		err := m.withMirror(ctx, r.project, func(r *repo) error {
			if !r.dirty {
				return nil
			}
			if _, err := m.git.exec(ctx, opts{dir: r.dir, gc: true}, "gc", "--auto", "--quiet"); err != nil {
				return err
			}
			r.dirty = false
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("gc %s: %w", r.project, err))
		}
	}
	return errors.Join(errs...)
}

// ConfigFile returns the contents of file at commit sha of the project's
// refs/meta/config (the current refs/meta/config when sha is empty). The
// commit must be on refs/meta/config, so only what project owners
// committed there is ever read. A file that does not exist gives an error
// matching fs.ErrNotExist.
func (m *Merger) ConfigFile(ctx context.Context, project, sha, file string) ([]byte, error) {
	const meta = "refs/meta/config"
	if file == "" || strings.HasPrefix(file, "/") || path.Clean(file) != file || strings.HasPrefix(file, "../") {
		return nil, fmt.Errorf("invalid path %q", file)
	}
	if sha != "" && !isHex(sha) {
		return nil, fmt.Errorf("invalid commit %q", sha)
	}
	var content []byte
	err := m.withRepo(ctx, project, func(r *repo) error {
		rev := sha
		if sha == "" {
			if err := m.fetch(ctx, r, []string{meta}); err != nil {
				return err
			}
			rev = meta
		} else {
			onMeta := func() (bool, error) {
				_, err := m.git.run(ctx, r.dir, "merge-base", "--is-ancestor", sha, meta)
				if err != nil && exitCode(err) != 1 && exitCode(err) != 128 {
					return false, err
				}
				return err == nil, nil
			}
			ok, err := onMeta()
			if err != nil {
				return err
			}
			if !ok {
				if err := m.fetch(ctx, r, []string{meta}); err != nil {
					return err
				}
				if ok, err = onMeta(); err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%s is not a commit of %s in %s", sha, meta, project)
				}
			}
		}
		objs, err := m.git.catFile(ctx, r.dir, []string{rev + ":" + file})
		if err != nil {
			return err
		}
		if objs[0].id == "" {
			return fmt.Errorf("%s:%s in %s: %w", rev, file, project, fs.ErrNotExist)
		}
		if objs[0].typ != "blob" {
			return fmt.Errorf("%s:%s in %s is a %s, not a file", rev, file, project, objs[0].typ)
		}
		content = objs[0].content
		return nil
	})
	return content, err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
