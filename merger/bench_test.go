package merger

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// The benchmark repository: benchCommits commits on master touching
// benchFiles files, and benchChanges changes written against a commit
// 100 behind the tip, each editing its own file, so every item needs a
// real merge.
const (
	benchCommits = 10000
	benchFiles   = 5000
	benchChanges = 20
	benchVersion = "bench-repo-v1"
)

func benchPath(i int) string { return fmt.Sprintf("dir%02d/file%04d.txt", i/100, i) }

func benchContent(i, rev int) string {
	var s string
	for l := 0; l < 8; l++ {
		if l == 3 {
			s += fmt.Sprintf("file %d revision %d\n", i, rev)
		} else {
			s += fmt.Sprintf("file %d line %d\n", i, l)
		}
	}
	return s
}

// writeBenchStream writes the fast-import stream of the benchmark repo.
func writeBenchStream(w *bufio.Writer) {
	data := func(s string) { fmt.Fprintf(w, "data %d\n%s\n", len(s), s) }
	ts := int64(1_600_000_000)
	commit := func(ref string, mark int, from int, msg string) {
		ts += 60
		fmt.Fprintf(w, "commit %s\nmark :%d\nauthor Bench <bench@example.com> %d +0000\ncommitter Bench <bench@example.com> %d +0000\n", ref, mark, ts, ts)
		data(msg)
		if from > 0 {
			fmt.Fprintf(w, "from :%d\n", from)
		}
	}
	commit("refs/heads/master", 1, 0, "initial import")
	for i := 0; i < benchFiles; i++ {
		fmt.Fprintf(w, "M 100644 inline %s\n", benchPath(i))
		data(benchContent(i, 0))
	}
	for n := 2; n <= benchCommits; n++ {
		commit("refs/heads/master", n, n-1, fmt.Sprintf("commit %d", n))
		f := (n * 7919) % benchFiles
		fmt.Fprintf(w, "M 100644 inline %s\n", benchPath(f))
		data(benchContent(f, n))
	}
	for c := 1; c <= benchChanges; c++ {
		num := 1000 + c
		commit(fmt.Sprintf("refs/changes/%02d/%d/1", num%100, num), benchCommits+c, benchCommits-100, fmt.Sprintf("change %d", num))
		fmt.Fprintf(w, "M 100644 inline change%02d.txt\n", c)
		data(fmt.Sprintf("change %d\n", c))
	}
}

var benchOnce struct {
	sync.Once
	dir string
	err error
}

// benchUpstream returns the benchmark repository, generated once and kept
// under os.TempDir() for later runs.
func benchUpstream(b *testing.B) (string, []pipeline.Spec) {
	b.Helper()
	benchOnce.Do(func() {
		h := sha256.Sum256(fmt.Appendf(nil, "%s %d %d %d", benchVersion, benchCommits, benchFiles, benchChanges))
		dir := filepath.Join(os.TempDir(), "seakeeper-bench-"+hex.EncodeToString(h[:6]))
		benchOnce.dir = filepath.Join(dir, "bench.git")
		if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
			return
		}
		os.RemoveAll(dir)
		tmp := dir + ".tmp"
		os.RemoveAll(tmp)
		bare := filepath.Join(tmp, "bench.git")
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			benchOnce.err = err
			return
		}
		env := testEnv(tmp)
		if _, err := tryGit(tmp, env, "", "init", "--bare", "--quiet", bare); err != nil {
			benchOnce.err = err
			return
		}
		cmd := exec.Command("git", "fast-import", "--quiet")
		cmd.Dir, cmd.Env = bare, append(env, "GIT_DIR="+bare)
		in, err := cmd.StdinPipe()
		if err != nil {
			benchOnce.err = err
			return
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			benchOnce.err = err
			return
		}
		w := bufio.NewWriterSize(in, 1<<20)
		writeBenchStream(w)
		w.Flush()
		in.Close()
		if err := cmd.Wait(); err != nil {
			benchOnce.err = err
			return
		}
		if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
			benchOnce.err = err
			return
		}
		benchOnce.err = os.Rename(tmp, dir)
	})
	if benchOnce.err != nil {
		b.Fatal(benchOnce.err)
	}
	env := append(testEnv(b.TempDir()), "GIT_DIR="+benchOnce.dir)
	var specs []pipeline.Spec
	for c := 1; c <= benchChanges; c++ {
		num := 1000 + c
		ref := fmt.Sprintf("refs/changes/%02d/%d/1", num%100, num)
		specs = append(specs, pipeline.Spec{Project: "bench", Branch: "master", Number: num, Patchset: 1, Ref: ref,
			Commit: runGit(b, benchOnce.dir, env, "", "rev-parse", ref)})
	}
	return benchOnce.dir, specs
}

// BenchmarkPrepare20th prepares the state of the 20th item of a queue,
// three ways, side by side:
//
//   - merger: the warm mirror and the 19th item's result (what the gate
//     does: each item is one step on the item ahead);
//   - merger-from-scratch: the warm mirror, all 20 changes on a freshly
//     fetched branch tip;
//   - naive: clone, checkout, fetch the change refs and `git merge` each in
//     a worktree.
//
// Run: go test ./merger -run XXX -bench . -benchtime 10x
func BenchmarkPrepare20th(b *testing.B) {
	up, changes := benchUpstream(b)
	ctx := context.Background()
	source := func(string) string { return up }
	check := func(b *testing.B, res pipeline.MergeResult) {
		if res.Error != "" || res.Conflict != nil || len(res.Commits) != 1 {
			b.Fatalf("prepare: %+v", res)
		}
	}

	b.Run("merger", func(b *testing.B) {
		m, err := New(Config{Dir: b.TempDir(), Source: source})
		if err != nil {
			b.Fatal(err)
		}
		base := ""
		for k := 1; k < benchChanges; k++ {
			bs := fmt.Sprintf("warm-%d.1", k)
			check(b, m.Prepare(ctx, bs, changes[:k], base))
			base = bs
		}
		i := 0
		for b.Loop() {
			i++
			check(b, m.Prepare(ctx, fmt.Sprintf("item20-%d.1", i), changes, base))
		}
	})

	b.Run("merger-from-scratch", func(b *testing.B) {
		m, err := New(Config{Dir: b.TempDir(), Source: source})
		if err != nil {
			b.Fatal(err)
		}
		check(b, m.Prepare(ctx, "warm.1", changes[:1], ""))
		i := 0
		for b.Loop() {
			i++
			check(b, m.Prepare(ctx, fmt.Sprintf("scratch-%d.1", i), changes, ""))
		}
	})

	b.Run("naive", func(b *testing.B) {
		env := testEnv(b.TempDir())
		fetch := []string{"fetch", "--quiet", "origin"}
		for _, c := range changes {
			fetch = append(fetch, c.Ref)
		}
		m, err := New(Config{Dir: b.TempDir(), Source: source})
		if err != nil {
			b.Fatal(err)
		}
		res := m.Prepare(ctx, "same.1", changes, "")
		check(b, res)
		want := runGit(b, "", append(testEnv(b.TempDir()), "GIT_DIR="+m.repoDir("bench")), "", "rev-parse", res.Commits[0].Commit+"^{tree}")
		var tree string
		for b.Loop() {
			dir := filepath.Join(b.TempDir(), "wt")
			runGit(b, "", env, "", "clone", "--quiet", up, dir)
			runGit(b, dir, env, "", fetch...)
			for _, c := range changes {
				runGit(b, dir, env, "", "merge", "--quiet", "--no-edit", c.Commit)
			}
			tree = runGit(b, dir, env, "", "rev-parse", "HEAD^{tree}")
			b.StopTimer()
			os.RemoveAll(dir)
			b.StartTimer()
		}
		if tree != want {
			b.Fatalf("naive merge gives tree %s, the merger %s", tree, want)
		}
	})
}
