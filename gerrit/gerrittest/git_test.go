package gerrittest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGitCloneAndFetchChangeRefs(t *testing.T) {
	s, _ := newFake(t, "mediawiki/core", MergeIfNecessary)
	ch := mustChange(t, s, ChangeSpec{Project: "mediawiki/core", Files: map[string]string{"README": "hello\n"}})
	ch2, err := s.NewPatchset("mediawiki/core", ch.Number, PatchsetSpec{Files: map[string]string{"README": "hello again\n"}})
	must(t, err)
	tip, err := s.Branch("mediawiki/core", "master")
	must(t, err)

	for _, url := range []string{s.GitURL("mediawiki/core"), s.AuthGitURL("mediawiki/core")} {
		dir := filepath.Join(t.TempDir(), "clone")
		mustGit(t, "", "clone", "-q", url, dir)
		if got := mustGit(t, dir, "rev-parse", "HEAD"); got != tip {
			t.Errorf("%s: HEAD %s, branch %s", url, got, tip)
		}
		for _, ps := range ch2.Patchsets {
			mustGit(t, dir, "fetch", "-q", "origin", ps.Ref)
			if got := mustGit(t, dir, "rev-parse", "FETCH_HEAD"); got != ps.Revision {
				t.Errorf("%s: %s is %s, want %s", url, ps.Ref, got, ps.Revision)
			}
		}
		if got := mustGit(t, dir, "show", "FETCH_HEAD:README"); got != "hello again" {
			t.Errorf("README %q", got)
		}
		if got := mustGit(t, dir, "log", "-1", "--format=%an <%ae>%n%B", "FETCH_HEAD"); !strings.Contains(got, "Developer <developer@example.com>") ||
			!strings.Contains(got, "Change-Id: "+ch.ChangeID) {
			t.Errorf("commit %q", got)
		}
	}
	// Wrong credentials are refused on the authenticated path.
	bad := strings.Replace(s.AuthGitURL("mediawiki/core"), ":"+s.Password()+"@", ":nope@", 1)
	if out, err := git(t, "", "ls-remote", bad); err == nil {
		t.Errorf("ls-remote with a wrong password: %s", out)
	}
	if out, err := git(t, "", "ls-remote", s.GitURL("nope")); err == nil {
		t.Errorf("ls-remote of an unknown project: %s", out)
	}
}

func TestGitPushRefused(t *testing.T) {
	s, _ := newFake(t, "p", MergeIfNecessary)
	before, err := s.Branch("p", "master")
	must(t, err)
	dir := filepath.Join(t.TempDir(), "clone")
	mustGit(t, "", "clone", "-q", s.AuthGitURL("p"), dir)
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("x\n"), 0o644))
	mustGit(t, dir, "add", "f")
	mustGit(t, dir, "commit", "-q", "-m", "direct")
	for _, ref := range []string{"HEAD:refs/heads/master", "HEAD:refs/for/master"} {
		out, err := git(t, dir, "push", "origin", ref)
		if err == nil || !strings.Contains(out, "403") {
			t.Errorf("push %s: %v %s", ref, err, out)
		}
	}
	if after, _ := s.Branch("p", "master"); after != before {
		t.Errorf("branch moved to %s", after)
	}
}

func TestGitLargeFetchNegotiation(t *testing.T) {
	// Thousands of local commits make git send its haves in a chunked
	// request body, which net/http/cgi refuses unless the fake buffers it.
	s, _ := newFake(t, "p", MergeIfNecessary)
	dir := filepath.Join(t.TempDir(), "clone")
	mustGit(t, "", "clone", "-q", s.GitURL("p"), dir)
	var stream strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&stream, "commit refs/heads/local\ncommitter t <t@example.com> %d +0000\ndata 2\nc\n", 1700000000+i)
		if i == 0 {
			stream.WriteString("from refs/heads/master\n")
		}
		fmt.Fprintf(&stream, "M 644 inline f\ndata %d\n%d\n\n", len(fmt.Sprint(i))+1, i)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Env, cmd.Stdin = dir, gitEnv(), strings.NewReader(stream.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v\n%s", err, out)
	}
	mustGit(t, dir, "config", "http.postBuffer", "66000")
	mustGit(t, dir, "config", "protocol.version", "2")
	ch := mustChange(t, s, ChangeSpec{Project: "p"})
	mustGit(t, dir, "fetch", "-q", "origin", ch.Current().Ref)
	if got := mustGit(t, dir, "rev-parse", "FETCH_HEAD"); got != ch.Current().Revision {
		t.Errorf("FETCH_HEAD %s", got)
	}
}
