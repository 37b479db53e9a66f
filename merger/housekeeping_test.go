package merger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

func seakeeperRefs(t *testing.T, m *Merger, project string) string {
	t.Helper()
	return mirrorGit(t, m, project, "for-each-ref", "--format=%(refname)", "refs/seakeeper/", "refs/seakeeper-branch/")
}

func TestReleaseAndKeep(t *testing.T) {
	root := t.TempDir()
	u1, tip1, c1 := fourChanges(t, root, "one")
	_, _, c2 := fourChanges(t, root, "two")
	u1.setRef("refs/heads/stable", tip1)
	s1 := u1.change("one", "stable", 77, u1.commit("stable fix", map[string]string{"s.txt": "s\n"}, tip1))
	m := newMerger(t, root, nil, nil)
	ctx := context.Background()
	mustPrepare(t, m, "a.1", []pipeline.Spec{c1[0], s1, c2[0]}, "")
	mustPrepare(t, m, "b.1", []pipeline.Spec{c1[0], c1[1]}, "")
	mustPrepare(t, m, "c.1", []pipeline.Spec{c2[1]}, "")
	if got := seakeeperRefs(t, m, "one"); got != "refs/seakeeper-branch/a.1/master\nrefs/seakeeper-branch/a.1/stable\nrefs/seakeeper/a.1\nrefs/seakeeper/b.1" {
		t.Fatalf("refs of one:\n%s", got)
	}
	if err := m.Release(ctx, "a.1", "unknown.1"); err != nil {
		t.Fatal(err)
	}
	if got := seakeeperRefs(t, m, "one"); got != "refs/seakeeper/b.1" {
		t.Errorf("after release, refs of one: %q", got)
	}
	if got := seakeeperRefs(t, m, "two"); got != "refs/seakeeper/c.1" {
		t.Errorf("after release, refs of two: %q", got)
	}
	// Released results are not reused.
	if rec := m.reuse(ctx, &flight{seq: 1 << 60}, "x", "a.1", []pipeline.Spec{c1[0], s1, c2[0], c1[1]}); rec != nil {
		t.Error("released buildset still reusable")
	}

	// After a restart only Keep knows about old refs.
	m2 := newMergerIn(t, filepath.Dir(m.reposDir), root, nil, nil)
	if err := m2.Release(ctx, "b.1"); err != nil {
		t.Fatal(err)
	}
	if got := seakeeperRefs(t, m2, "one"); got != "refs/seakeeper/b.1" {
		t.Errorf("release of an unknown buildset deleted refs: %q", got)
	}
	mustPrepare(t, m2, "d.1", []pipeline.Spec{c1[0]}, "")
	if err := m2.Keep(ctx, []string{"d.1", "c.1"}); err != nil {
		t.Fatal(err)
	}
	if got := seakeeperRefs(t, m2, "one") + "|" + seakeeperRefs(t, m2, "two"); got != "refs/seakeeper/d.1|refs/seakeeper/c.1" {
		t.Errorf("after keep: %q", got)
	}
	if err := m2.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseWhilePreparing(t *testing.T) {
	root := t.TempDir()
	_, _, changes := fourChanges(t, root, "p")
	m := newMerger(t, root, nil, nil)
	// Hold the repository lock so the Prepare waits inside.
	r, err := m.repo("p")
	if err != nil {
		t.Fatal(err)
	}
	r.lock <- struct{}{}
	done := make(chan pipeline.MergeResult)
	go func() { done <- m.Prepare(context.Background(), "late.1", changes, "") }()
	for {
		m.mu.Lock()
		fl := m.inflight["late.1"]
		m.mu.Unlock()
		if fl != nil {
			break
		}
	}
	if err := m.Release(context.Background(), "late.1"); err != nil {
		t.Fatal(err)
	}
	<-r.lock
	<-done
	if got := seakeeperRefs(t, m, "p"); got != "" {
		t.Errorf("released during prepare, refs left: %q", got)
	}
}

func TestBrokenMirrorIsReCloned(t *testing.T) {
	root := t.TempDir()
	_, _, changes := fourChanges(t, root, "p")
	state := t.TempDir()
	var log testlog.Buffer
	m := newMergerIn(t, state, root, nil, &log)
	want := mustPrepare(t, m, "x.1", changes, "")

	// A restart reuses a healthy mirror.
	log = testlog.Buffer{}
	m = newMergerIn(t, state, root, nil, &log)
	mustPrepare(t, m, "x.2", changes, "")
	if s := log.String(); strings.Contains(s, "cloning") {
		t.Errorf("healthy mirror re-cloned:\n%s", s)
	}

	breakers := map[string]func(dir string) error{
		"missing HEAD": func(dir string) error { return os.Remove(filepath.Join(dir, "HEAD")) },
		"missing objects": func(dir string) error {
			packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*"))
			loose, _ := filepath.Glob(filepath.Join(dir, "objects", "??", "*"))
			for _, f := range append(packs, loose...) {
				if err := os.Remove(f); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for name, breakIt := range breakers {
		if err := breakIt(m.repoDir("p")); err != nil {
			t.Fatal(err)
		}
		log = testlog.Buffer{}
		m = newMergerIn(t, state, root, nil, &log)
		got := mustPrepare(t, m, "x.3", changes, "")
		if commitOf(t, got, "p", "master") != commitOf(t, want, "p", "master") {
			t.Errorf("%s: %+v, want %+v", name, got.Commits, want.Commits)
		}
		if s := log.String(); !strings.Contains(s, "mirror is broken, cloning it again") {
			t.Errorf("%s: no log line about the re-clone:\n%s", name, s)
		}
	}
}

func TestConfigFile(t *testing.T) {
	root := t.TempDir()
	u, _, changes := fourChanges(t, root, "p")
	cfg1 := u.commit("config", map[string]string{"project.config": "[submit]\n", "seakeeper.yaml": "gate: {}\n"})
	cfg2 := u.commit("config 2", map[string]string{"seakeeper.yaml": "gate: {two: 2}\n"}, cfg1)
	u.setRef("refs/meta/config", cfg2)
	m := newMerger(t, root, nil, nil)
	ctx := context.Background()
	for sha, want := range map[string]string{cfg1: "gate: {}\n", cfg2: "gate: {two: 2}\n", "": "gate: {two: 2}\n"} {
		got, err := m.ConfigFile(ctx, "p", sha, "seakeeper.yaml")
		if err != nil || string(got) != want {
			t.Errorf("ConfigFile(%q) = %q, %v; want %q", sha, got, err, want)
		}
	}
	if _, err := m.ConfigFile(ctx, "p", cfg2, "missing.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := m.ConfigFile(ctx, "p", changes[0].Commit, "a.txt"); err == nil {
		t.Error("read a file from a commit that is not on refs/meta/config")
	}
	if _, err := m.ConfigFile(ctx, "p", cfg2, "../x"); err == nil {
		t.Error("accepted a path outside the tree")
	}
}

// TestConcurrentPrepareAcrossRepos prepares queues in several projects at
// once, with fewer slots than projects, and checks the results against a
// sequential run (commit ids are deterministic).
func TestConcurrentPrepareAcrossRepos(t *testing.T) {
	root := t.TempDir()
	const projects = 6
	queues := make([][]pipeline.Spec, projects)
	for i := range queues {
		_, _, queues[i] = fourChanges(t, root, fmt.Sprintf("p%d", i))
	}
	typeOf := func(p string) Policy { return Policy{Type: allTypes[int(p[1]-'0')%len(allTypes)]} }
	sequential := newMerger(t, root, typeOf, nil)
	m := newMerger(t, root, typeOf, nil)
	want := map[string]pipeline.MergeResult{}
	bsID := func(i, k int) string { return fmt.Sprintf("p%d-%d.1", i, k) }
	for i, q := range queues {
		for k := 1; k <= len(q); k++ {
			want[bsID(i, k)] = sequential.Prepare(context.Background(), bsID(i, k), q[:k], "")
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]pipeline.MergeResult{}
	for i, q := range queues {
		for k := 1; k <= len(q); k++ {
			wg.Go(func() {
				base := ""
				if k > 1 {
					base = bsID(i, k-1)
				}
				res := m.Prepare(context.Background(), bsID(i, k), q[:k], base)
				mu.Lock()
				got[bsID(i, k)] = res
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for bs, w := range want {
		g := got[bs]
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: concurrently %+v, sequentially %+v", bs, g, w)
		}
	}
}

// A git command killed midway (the daemon SIGKILLed) leaves lock files in
// the mirror; after a restart they are removed, not obeyed for ever, and
// the mirror is kept.
func TestStaleLocksRemovedAfterRestart(t *testing.T) {
	root := t.TempDir()
	_, _, changes := fourChanges(t, root, "p")
	state := t.TempDir()
	m := newMergerIn(t, state, root, nil, nil)
	want := mustPrepare(t, m, "x.1", changes, "")

	dir := m.repoDir("p")
	locks := []string{
		filepath.Join(dir, "refs", "heads", "master.lock"),
		filepath.Join(dir, "refs", "seakeeper", "x.2.lock"),
		filepath.Join(dir, "packed-refs.lock"),
	}
	for _, f := range locks {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log testlog.Buffer
	m = newMergerIn(t, state, root, nil, &log)
	got := mustPrepare(t, m, "x.2", changes, "")
	if commitOf(t, got, "p", "master") != commitOf(t, want, "p", "master") {
		t.Errorf("after the restart: %+v, want %+v", got.Commits, want.Commits)
	}
	for _, f := range locks {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("stale lock %s is still there", f)
		}
	}
	s := log.String()
	if n := strings.Count(s, "removed a stale git lock"); n != len(locks) {
		t.Errorf("%d log lines about removed locks, want %d:\n%s", n, len(locks), s)
	}
	if strings.Contains(s, "cloning") {
		t.Errorf("a mirror with stale locks was cloned again:\n%s", s)
	}
}
