package merger

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

func newTestLogger(w *testlog.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

var allTypes = []SubmitType{MergeIfNecessary, MergeAlways, FastForwardOnly, RebaseIfNecessary, RebaseAlways, CherryPick}

// scenario: the branch moved past the base the changes were written on.
// Change 1 is on the tip, change 2 on the old base, change 3 on change 2,
// change 4 on the old base and edits another hunk of change 1's file.
func fourChanges(t *testing.T, root, project string) (*upstream, string, []pipeline.Spec) {
	u := newUpstream(t, root, project)
	base := u.commit("base", map[string]string{"a.txt": lines(10, nil), "b.txt": lines(10, nil), "c.txt": lines(10, nil)})
	tip := u.commit("moved tip", map[string]string{"x.txt": "x\n"}, base)
	u.setRef("refs/heads/master", tip)
	c1 := u.commit("change one", map[string]string{"a.txt": lines(10, map[int]string{1: "one"})}, tip)
	c2 := u.commit("change two", map[string]string{"b.txt": lines(10, map[int]string{2: "two"})}, base)
	c3 := u.commit("change three\n\nWith a body.", map[string]string{"b.txt": lines(10, map[int]string{2: "two", 5: "three"}), "new.txt": "new\n"}, c2)
	c4 := u.commit("change four", map[string]string{"a.txt": lines(10, map[int]string{9: "four"}), "c.txt": ""}, base)
	var specs []pipeline.Spec
	for i, c := range []string{c1, c2, c3, c4} {
		specs = append(specs, u.change(project, "master", 101+i, c))
	}
	return u, tip, specs
}

// checkQueue prepares each item of a queue (item k = changes[:k], reusing
// item k-1) and checks it against real git applying the same changes one
// by one in a worktree: same tree, same history shape. want lists the
// expected kind of each step: "ff", "merge" or "pick".
func checkQueue(t *testing.T, m *Merger, u *upstream, typ SubmitType, tip string, changes []pipeline.Spec, want []string) []string {
	t.Helper()
	w := newWorktree(t, u, tip)
	prev, base := tip, ""
	var ids []string
	for k := 1; k <= len(changes); k++ {
		bs := fmt.Sprintf("%s-%d.1", strings.ToLower(string(typ)), k)
		res := mustPrepare(t, m, bs, changes[:k], base)
		c := changes[k-1].Commit
		ours := commitOf(t, res, changes[0].Project, "master")
		w.submit(typ, c)
		if got, exp := mirrorGit(t, m, changes[0].Project, "rev-parse", ours+"^{tree}"), w.tree("HEAD"); got != exp {
			t.Fatalf("%s item %d: tree %s, git %s gives %s", typ, k, got, typ, exp)
		}
		gitParents := strings.Fields(w.git("rev-list", "--parents", "-n1", "HEAD"))[1:]
		ourParents := parentsOf(t, m, changes[0].Project, ours)
		kind := "pick"
		switch {
		case ours == c:
			kind = "ff"
		case len(ourParents) == 2 && ourParents[0] == prev && ourParents[1] == c:
			kind = "merge"
		case len(ourParents) != 1 || ourParents[0] != prev:
			t.Fatalf("%s item %d: %s has parents %v, previous state %s", typ, k, ours, ourParents, prev)
		}
		if kind != want[k-1] {
			t.Errorf("%s item %d: %s, want %s", typ, k, kind, want[k-1])
		}
		gitKind := "pick"
		if w.head() == c {
			gitKind = "ff"
		} else if len(gitParents) == 2 {
			gitKind = "merge"
		}
		if kind != gitKind {
			t.Errorf("%s item %d: we %s, git %s", typ, k, kind, gitKind)
		}
		if kind == "pick" {
			if cn := mirrorGit(t, m, changes[0].Project, "log", "-1", "--format=%cn <%ce> %cd", ours); cn != "Seakeeper <seakeeper@invalid> "+mirrorGit(t, m, changes[0].Project, "log", "-1", "--format=%cd", c) {
				t.Errorf("%s item %d: committer %q", typ, k, cn)
			}
			for _, f := range []string{"%an <%ae> %ad", "%B"} {
				if a, b := mirrorGit(t, m, changes[0].Project, "log", "-1", "--format="+f, ours), mirrorGit(t, m, changes[0].Project, "log", "-1", "--format="+f, c); a != b {
					t.Errorf("%s item %d: rebased commit %q, change %q", typ, k, a, b)
				}
			}
		}
		if ref := mirrorGit(t, m, changes[0].Project, "rev-parse", primaryRef(bs)); ref != ours {
			t.Errorf("%s item %d: ref %s, result %s", typ, k, ref, ours)
		}
		ids = append(ids, ours)
		prev, base = ours, bs
	}
	// Deterministic: from scratch, the last item gives the same commit.
	res := mustPrepare(t, m, "scratch-"+strings.ToLower(string(typ)), changes, "")
	if got := commitOf(t, res, changes[0].Project, "master"); got != prev {
		t.Errorf("%s: from scratch %s, reusing the item ahead %s", typ, got, prev)
	}
	return ids
}

func TestSubmitTypesMatchGit(t *testing.T) {
	want := map[SubmitType][]string{
		MergeIfNecessary:  {"ff", "merge", "merge", "merge"},
		MergeAlways:       {"merge", "merge", "merge", "merge"},
		RebaseIfNecessary: {"ff", "pick", "pick", "pick"},
		RebaseAlways:      {"pick", "pick", "pick", "pick"},
		CherryPick:        {"pick", "pick", "pick", "pick"},
	}
	for _, typ := range allTypes {
		if typ == FastForwardOnly {
			continue // TestFastForwardOnly
		}
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			u, tip, changes := fourChanges(t, root, "p")
			m := newMerger(t, root, func(string) Policy { return Policy{Type: typ} }, nil)
			checkQueue(t, m, u, typ, tip, changes, want[typ])
		})
	}
}

// chain of n dependent changes, the first on base.
func chain(u *upstream, project string, n, first int, base string) []pipeline.Spec {
	var specs []pipeline.Spec
	parent := base
	repl := map[int]string{}
	for i := 1; i <= n; i++ {
		repl[i] = fmt.Sprintf("chain %d", i)
		c := u.commit(fmt.Sprintf("chain step %d", i), map[string]string{"chain.txt": lines(n+5, repl), fmt.Sprintf("f%d.txt", i): "step\n"}, parent)
		specs = append(specs, u.change(project, "master", first+i, c))
		parent = c
	}
	return specs
}

func TestChainOfTen(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			u := newUpstream(t, root, "p")
			base := u.commit("base", map[string]string{"chain.txt": lines(15, nil), "other.txt": "o\n"})
			tip := base
			if typ != FastForwardOnly {
				tip = u.commit("moved", map[string]string{"other.txt": "moved\n"}, base)
			}
			u.setRef("refs/heads/master", tip)
			changes := chain(u, "p", 10, 200, base)
			kind := map[SubmitType]string{MergeIfNecessary: "merge", MergeAlways: "merge", FastForwardOnly: "ff",
				RebaseIfNecessary: "pick", RebaseAlways: "pick", CherryPick: "pick"}[typ]
			want := make([]string, len(changes))
			for i := range want {
				want[i] = kind
			}
			m := newMerger(t, root, func(string) Policy { return Policy{Type: typ} }, nil)
			checkQueue(t, m, u, typ, tip, changes, want)
		})
	}
}

func TestFastForwardOnly(t *testing.T) {
	root := t.TempDir()
	u := newUpstream(t, root, "p")
	base := u.commit("base", map[string]string{"a.txt": lines(5, nil)})
	u.setRef("refs/heads/master", base)
	changes := chain(u, "p", 3, 300, base)
	side := u.change("p", "master", 400, u.commit("side", map[string]string{"s.txt": "s\n"}, base))
	m := newMerger(t, root, func(string) Policy { return Policy{Type: FastForwardOnly} }, nil)
	checkQueue(t, m, u, FastForwardOnly, base, changes, []string{"ff", "ff", "ff"})

	res := m.Prepare(context.Background(), "ff-side.1", append(changes[:3:3], side), "fastforwardonly-3.1")
	if res.Error != "" || res.Conflict == nil {
		t.Fatalf("non-fast-forward: %+v", res)
	}
	if res.Conflict.Change != side.Key() || !strings.Contains(res.Conflict.Message, "fast-forward") {
		t.Errorf("conflict %+v", res.Conflict)
	}
	if out, _ := tryGit(m.repoDir("p"), append(testEnv(t.TempDir()), "GIT_DIR="+m.repoDir("p")), "", "for-each-ref", "refs/seakeeper/ff-side.1"); out != "" {
		t.Errorf("conflicting buildset wrote %s", out)
	}
}

func TestContentConflict(t *testing.T) {
	for _, typ := range []SubmitType{MergeIfNecessary, MergeAlways, RebaseIfNecessary, RebaseAlways, CherryPick} {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			u, _, changes := fourChanges(t, root, "p")
			bad := u.change("p", "master", 150, u.commit("clash", map[string]string{"a.txt": lines(10, map[int]string{1: "uno"})}, changes[1].Commit))
			m := newMerger(t, root, func(string) Policy { return Policy{Type: typ} }, nil)
			list := []pipeline.Spec{changes[0], changes[1], bad, changes[3]}
			res := m.Prepare(context.Background(), "clash.1", list, "")
			if res.Error != "" || res.Conflict == nil {
				t.Fatalf("want a conflict, got %+v", res)
			}
			c := res.Conflict
			if c.Change != bad.Key() || len(c.Files) != 1 || c.Files[0] != "a.txt" || !strings.Contains(c.Message, "CONFLICT (content)") {
				t.Errorf("conflict %+v", c)
			}
			if len(res.Commits) != 0 {
				t.Errorf("commits with a conflict: %+v", res.Commits)
			}
		})
	}
}

func TestNoContentMerge(t *testing.T) {
	root := t.TempDir()
	_, _, changes := fourChanges(t, root, "p")
	for _, typ := range []SubmitType{MergeIfNecessary, RebaseIfNecessary} {
		m := newMerger(t, root, func(string) Policy { return Policy{Type: typ, NoContentMerge: true} }, nil)
		res := m.Prepare(context.Background(), "ncm.1", changes, "")
		if res.Conflict == nil || res.Conflict.Change != changes[3].Key() || strings.Join(res.Conflict.Files, ",") != "a.txt" {
			t.Errorf("%s: want a path conflict on change 4's a.txt, got %+v", typ, res)
		}
		// Without change 1 nothing touches a file twice.
		mustPrepare(t, m, "ncm.2", changes[1:], "")
	}
}

func TestMissingRefIsAnError(t *testing.T) {
	root := t.TempDir()
	_, _, changes := fourChanges(t, root, "p")
	m := newMerger(t, root, nil, nil)
	missing := pipeline.Spec{Project: "p", Branch: "master", Number: 999, Patchset: 1, Ref: "refs/changes/99/999/1"}
	wrong := changes[1]
	wrong.Commit = strings.Repeat("ab", 20)
	nobranch := changes[0]
	nobranch.Branch = "nope"
	for name, list := range map[string][]pipeline.Spec{
		"missing ref":    {changes[0], missing},
		"missing commit": {changes[0], wrong},
		"missing branch": {nobranch},
		"bad project":    {{Project: "../x", Branch: "master", Number: 1, Ref: "refs/changes/01/1/1"}},
	} {
		res := m.Prepare(context.Background(), "err.1", list, "")
		if res.Error == "" || res.Conflict != nil || len(res.Commits) != 0 {
			t.Errorf("%s: want an error, got %+v", name, res)
		}
	}
	if res := m.Prepare(context.Background(), "bad..id", changes, ""); res.Error == "" {
		t.Errorf("invalid buildset id accepted")
	}
	// The mirror is fine afterwards.
	mustPrepare(t, m, "ok.1", changes, "")
}

func TestMergeCommitChangeIsMergedUnderRebase(t *testing.T) {
	root := t.TempDir()
	u := newUpstream(t, root, "p")
	base := u.commit("base", map[string]string{"a.txt": lines(5, nil)})
	tip := u.commit("tip", map[string]string{"t.txt": "t\n"}, base)
	u.setRef("refs/heads/master", tip)
	side := u.commit("side", map[string]string{"s.txt": "s\n"}, base)
	mc := u.commit("merge side", map[string]string{"s.txt": "s\n", "m.txt": "m\n"}, base, side)
	spec := u.change("p", "master", 7, mc)
	m := newMerger(t, root, func(string) Policy { return Policy{Type: RebaseIfNecessary} }, nil)
	res := mustPrepare(t, m, "mc.1", []pipeline.Spec{spec}, "")
	got := commitOf(t, res, "p", "master")
	if p := parentsOf(t, m, "p", got); len(p) != 2 || p[0] != tip || p[1] != mc {
		t.Errorf("merge commit change: parents %v, want [%s %s]", p, tip, mc)
	}
}

func TestTwoProjectsOneBuildset(t *testing.T) {
	root := t.TempDir()
	u1, tip1, c1 := fourChanges(t, root, "org/one")
	u2, tip2, c2 := fourChanges(t, root, "org/two")
	// A second branch of org/one.
	stable := u1.commit("stable", map[string]string{"a.txt": lines(10, map[int]string{5: "stable"})}, tip1)
	u1.setRef("refs/heads/stable", stable)
	s1 := u1.change("org/one", "stable", 500, u1.commit("fix on stable", map[string]string{"fix.txt": "fix\n"}, stable))
	m := newMerger(t, root, func(p string) Policy {
		if p == "org/two" {
			return Policy{Type: RebaseAlways}
		}
		return Policy{Type: MergeIfNecessary}
	}, nil)
	list := []pipeline.Spec{c1[0], c2[0], c1[1], s1, c2[1]}
	res := mustPrepare(t, m, "multi.1", list, "")
	if len(res.Commits) != 3 {
		t.Fatalf("commits %+v", res.Commits)
	}
	w1 := newWorktree(t, u1, tip1)
	w1.submit(MergeIfNecessary, c1[0].Commit)
	w1.submit(MergeIfNecessary, c1[1].Commit)
	w2 := newWorktree(t, u2, tip2)
	w2.submit(RebaseAlways, c2[0].Commit)
	w2.submit(RebaseAlways, c2[1].Commit)
	one, two := commitOf(t, res, "org/one", "master"), commitOf(t, res, "org/two", "master")
	if mirrorGit(t, m, "org/one", "rev-parse", one+"^{tree}") != w1.tree("HEAD") || mirrorGit(t, m, "org/two", "rev-parse", two+"^{tree}") != w2.tree("HEAD") {
		t.Errorf("trees differ from git")
	}
	if got := commitOf(t, res, "org/one", "stable"); got != s1.Commit {
		t.Errorf("stable: %s, want fast-forward to %s", got, s1.Commit)
	}
	// org/one touches two branches: the primary ref is the branch of its
	// last change, and each branch has its own ref.
	refs := mirrorGit(t, m, "org/one", "for-each-ref", "--format=%(refname) %(objectname)", "refs/seakeeper/", "refs/seakeeper-branch/")
	wantRefs := fmt.Sprintf("refs/seakeeper-branch/multi.1/master %s\nrefs/seakeeper-branch/multi.1/stable %s\nrefs/seakeeper/multi.1 %s", one, s1.Commit, s1.Commit)
	if refs != wantRefs {
		t.Errorf("refs of org/one:\n%s\nwant\n%s", refs, wantRefs)
	}
	if got := mirrorGit(t, m, "org/two", "rev-parse", "refs/seakeeper/multi.1"); got != two {
		t.Errorf("org/two ref %s, want %s", got, two)
	}
	// A conflict in one project writes no ref in the other.
	clash := u2.change("org/two", "master", 600, u2.commit("clash", map[string]string{"b.txt": lines(10, map[int]string{2: "deux"})}, tip2))
	res = m.Prepare(context.Background(), "multi.2", append(list[:5:5], clash), "multi.1")
	if res.Conflict == nil || res.Conflict.Change != clash.Key() {
		t.Fatalf("want conflict on %v, got %+v", clash.Key(), res)
	}
	for _, p := range []string{"org/one", "org/two"} {
		if out := mirrorGit(t, m, p, "for-each-ref", "refs/seakeeper/multi.2"); out != "" {
			t.Errorf("%s: conflicting buildset left %s", p, out)
		}
	}
}

func TestEmptyCherryPickLeavesTheTip(t *testing.T) {
	root := t.TempDir()
	u := newUpstream(t, root, "p")
	base := u.commit("base", map[string]string{"a.txt": "old\n"})
	tip := u.commit("already there", map[string]string{"a.txt": "new\n"}, base)
	u.setRef("refs/heads/master", tip)
	spec := u.change("p", "master", 5, u.commit("same edit", map[string]string{"a.txt": "new\n"}, base))
	for typ, wantTip := range map[SubmitType]bool{CherryPick: true, RebaseAlways: false} {
		m := newMerger(t, root, func(string) Policy { return Policy{Type: typ} }, nil)
		got := commitOf(t, mustPrepare(t, m, "empty.1", []pipeline.Spec{spec}, ""), "p", "master")
		if (got == tip) != wantTip {
			t.Errorf("%s: state %s, tip %s", typ, got, tip)
		}
	}
}

func TestRefUpdates(t *testing.T) {
	root := t.TempDir()
	u := newUpstream(t, root, "p")
	base := u.commit("base", map[string]string{"a.txt": "a\n"})
	tip := u.commit("tip", map[string]string{"a.txt": "b\n"}, base)
	u.setRef("refs/heads/master", tip)
	u.git("", "tag", "-a", "-m", "release", "v1", base)
	tag := u.git("", "rev-parse", "refs/tags/v1")
	m := newMerger(t, root, nil, nil)
	res := mustPrepare(t, m, "post-1.1", []pipeline.Spec{{Project: "p", Branch: "master", Ref: "refs/heads/master", Commit: base}}, "")
	if got := commitOf(t, res, "p", "master"); got != base {
		t.Errorf("branch update: %s, want %s", got, base)
	}
	res = mustPrepare(t, m, "tag-1.1", []pipeline.Spec{{Project: "p", Ref: "refs/tags/v1", Commit: tag}}, "")
	if got := commitOf(t, res, "p", "refs/tags/v1"); got != base {
		t.Errorf("tag: %s, want the tagged commit %s", got, base)
	}
}
