package merger

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// testEnv is a clean environment for the git commands of the tests.
func testEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "TZ=UTC",
		"GIT_AUTHOR_NAME=Tester", "GIT_AUTHOR_EMAIL=tester@example.com",
		"GIT_COMMITTER_NAME=Tester", "GIT_COMMITTER_EMAIL=tester@example.com",
		"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=init.defaultBranch", "GIT_CONFIG_VALUE_0=master",
		"GIT_CONFIG_KEY_1=advice.detachedHead", "GIT_CONFIG_VALUE_1=false",
	}
}

// runGit runs git in dir for a test and returns its trimmed stdout.
func runGit(t testing.TB, dir string, env []string, stdin string, args ...string) string {
	t.Helper()
	out, err := tryGit(dir, env, stdin, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func tryGit(dir string, env []string, stdin string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// upstream is a bare repository standing in for Gerrit's copy of a
// project. Commits are made with plumbing and a private index, with
// increasing dates so that every commit is distinct and reproducible.
type upstream struct {
	t       testing.TB
	dir     string
	home    string
	mu      sync.Mutex
	clock   int64
	patches map[int]int
}

func newUpstream(t testing.TB, root, project string) *upstream {
	t.Helper()
	u := &upstream{t: t, dir: filepath.Join(root, project+".git"), home: t.TempDir(), clock: 1_700_000_000, patches: map[int]int{}}
	if err := os.MkdirAll(u.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	runGit(t, u.dir, testEnv(u.home), "", "init", "--bare", "--quiet")
	return u
}

func (u *upstream) git(stdin string, args ...string) string {
	u.t.Helper()
	return runGit(u.t, u.dir, append(testEnv(u.home), "GIT_DIR="+u.dir), stdin, args...)
}

// commit makes a commit on parents (the first parent's tree, with files
// replaced; a "" content deletes the file).
func (u *upstream) commit(msg string, files map[string]string, parents ...string) string {
	u.t.Helper()
	u.mu.Lock()
	u.clock += 60
	date := fmt.Sprintf("@%d +0000", u.clock)
	u.mu.Unlock()
	index := filepath.Join(u.t.TempDir(), "index")
	env := append(testEnv(u.home), "GIT_DIR="+u.dir, "GIT_INDEX_FILE="+index, "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	g := func(stdin string, args ...string) string { return runGit(u.t, u.dir, env, stdin, args...) }
	if len(parents) > 0 {
		g("", "read-tree", parents[0])
	} else {
		g("", "read-tree", "--empty")
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var info strings.Builder
	for _, p := range paths {
		if files[p] == "" {
			fmt.Fprintf(&info, "0 %s\t%s\n", strings.Repeat("0", 40), p)
			continue
		}
		blob := g(files[p], "hash-object", "-w", "--stdin")
		fmt.Fprintf(&info, "100644 %s\t%s\n", blob, p)
	}
	if info.Len() > 0 {
		g(info.String(), "update-index", "--index-info")
	}
	tree := g("", "write-tree")
	args := []string{"commit-tree", tree}
	for _, p := range parents {
		args = append(args, "-p", p)
	}
	return g(msg+"\n", args...)
}

func (u *upstream) setRef(ref, id string) { u.t.Helper(); u.git("", "update-ref", ref, id) }

// change publishes id as the next patchset of change n and returns its
// spec on branch.
func (u *upstream) change(project, branch string, n int, id string) pipeline.Spec {
	u.t.Helper()
	u.mu.Lock()
	u.patches[n]++
	ps := u.patches[n]
	u.mu.Unlock()
	ref := fmt.Sprintf("refs/changes/%02d/%d/%d", n%100, n, ps)
	u.setRef(ref, id)
	return pipeline.Spec{Project: project, Branch: branch, Number: n, Patchset: ps, Ref: ref, Commit: id}
}

// lines is a file of n numbered lines, with line k replaced when set.
func lines(n int, repl map[int]string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if s, ok := repl[i]; ok {
			b.WriteString(s + "\n")
		} else {
			fmt.Fprintf(&b, "line %d\n", i)
		}
	}
	return b.String()
}

// worktree is a throwaway clone in which the tests compute, with porcelain
// git, what the merger must predict.
type worktree struct {
	t   testing.TB
	dir string
	env []string
}

func newWorktree(t testing.TB, u *upstream, start string) *worktree {
	t.Helper()
	w := &worktree{t: t, dir: t.TempDir(), env: testEnv(t.TempDir())}
	runGit(t, w.dir, w.env, "", "init", "--quiet")
	w.git("fetch", "--quiet", "--update-head-ok", u.dir, "+refs/*:refs/*")
	w.git("checkout", "--quiet", "--detach", start)
	return w
}

func (w *worktree) git(args ...string) string {
	w.t.Helper()
	return runGit(w.t, w.dir, w.env, "", args...)
}

// submit applies one change to HEAD as Gerrit's submit type would, with
// the porcelain command that does it.
func (w *worktree) submit(typ SubmitType, c string) {
	w.t.Helper()
	switch typ {
	case MergeIfNecessary:
		w.git("merge", "--quiet", "--no-edit", c)
	case MergeAlways:
		w.git("merge", "--quiet", "--no-edit", "--no-ff", c)
	case FastForwardOnly:
		w.git("merge", "--quiet", "--ff-only", c)
	case RebaseIfNecessary:
		w.git("rebase", "--quiet", "--onto", "HEAD", c+"^", c)
	case RebaseAlways:
		w.git("rebase", "--quiet", "--force-rebase", "--onto", "HEAD", c+"^", c)
	case CherryPick:
		w.git("cherry-pick", c)
	default:
		w.t.Fatalf("unknown submit type %s", typ)
	}
}

func (w *worktree) head() string { w.t.Helper(); return w.git("rev-parse", "HEAD") }

func (w *worktree) tree(rev string) string { w.t.Helper(); return w.git("rev-parse", rev+"^{tree}") }

// newMerger makes a merger over upstreams under root (Source maps a
// project to root/<project>.git).
func newMerger(t testing.TB, root string, policy func(string) Policy, logw *testlog.Buffer) *Merger {
	t.Helper()
	return newMergerIn(t, t.TempDir(), root, policy, logw)
}

func newMergerIn(t testing.TB, dir, root string, policy func(string) Policy, logw *testlog.Buffer) *Merger {
	t.Helper()
	cfg := Config{
		Dir:      dir,
		Source:   func(p string) string { return filepath.Join(root, p+".git") },
		Parallel: 3,
	}
	if policy != nil {
		cfg.Policy = func(_ context.Context, p string) (Policy, error) { return policy(p), nil }
	}
	if logw != nil {
		cfg.Logger = newTestLogger(logw)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mirrorGit runs git in the merger's mirror of project.
func mirrorGit(t testing.TB, m *Merger, project string, args ...string) string {
	t.Helper()
	dir := m.repoDir(project)
	return runGit(t, dir, append(testEnv(t.TempDir()), "GIT_DIR="+dir), "", args...)
}

func parentsOf(t testing.TB, m *Merger, project, id string) []string {
	t.Helper()
	f := strings.Fields(mirrorGit(t, m, project, "rev-list", "--parents", "-n1", id))
	return f[1:]
}

func mustPrepare(t testing.TB, m *Merger, bs string, changes []pipeline.Spec, base string) pipeline.MergeResult {
	t.Helper()
	res := m.Prepare(context.Background(), bs, changes, base)
	if res.Error != "" || res.Conflict != nil {
		t.Fatalf("prepare %s: error %q conflict %+v", bs, res.Error, res.Conflict)
	}
	if res.BuildSet != bs {
		t.Fatalf("prepare %s: result for %q", bs, res.BuildSet)
	}
	return res
}

func commitOf(t testing.TB, res pipeline.MergeResult, project, branch string) string {
	t.Helper()
	for _, pc := range res.Commits {
		if pc.Project == project && pc.Branch == branch {
			return pc.Commit
		}
	}
	t.Fatalf("no commit for %s %s in %+v", project, branch, res.Commits)
	return ""
}
