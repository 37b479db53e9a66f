package merger

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

func TestEndpointServesSpeculativeRefsReadOnly(t *testing.T) {
	root := t.TempDir()
	_, _, changes := fourChanges(t, root, "org/proj")
	m := newMerger(t, root, nil, nil)
	res := mustPrepare(t, m, "gate-1.1", changes, "")
	want := commitOf(t, res, "org/proj", "master")

	mux := http.NewServeMux()
	mux.Handle("/git/", m.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/git/org/proj"

	env := testEnv(t.TempDir())
	work := t.TempDir()
	clone := filepath.Join(work, "clone")
	runGit(t, work, env, "", "clone", "--quiet", url, clone)
	runGit(t, clone, env, "", "fetch", "--quiet", "origin", "refs/seakeeper/gate-1.1")
	runGit(t, clone, env, "", "checkout", "--quiet", "--detach", "FETCH_HEAD")
	if got := runGit(t, clone, env, "", "rev-parse", "HEAD"); got != want {
		t.Fatalf("checked out %s, want %s", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(clone, "new.txt")); err != nil || string(b) != "new\n" {
		t.Errorf("new.txt: %q %v", b, err)
	}
	// By id too, and with protocol v0.
	runGit(t, clone, env, "", "-c", "protocol.version=0", "fetch", "--quiet", "origin", want)
	// A .git suffix is accepted.
	runGit(t, work, env, "", "ls-remote", url+".git", "refs/seakeeper/*")

	// Pushing is refused.
	runGit(t, clone, env, "", "commit", "--quiet", "--allow-empty", "-m", "evil")
	if out, err := tryGit(clone, env, "", "push", "origin", "HEAD:refs/heads/master"); err == nil {
		t.Fatalf("push succeeded: %s", out)
	} else if !strings.Contains(err.Error(), "403") {
		t.Errorf("push error does not say 403: %v", err)
	}
	if got := mirrorGit(t, m, "org/proj", "rev-parse", "refs/heads/master"); got == runGit(t, clone, env, "", "rev-parse", "HEAD") {
		t.Fatal("push went through")
	}

	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/git/org/proj/info/refs?service=git-receive-pack", 403},
		{"POST", "/git/org/proj/git-receive-pack", 403},
		{"GET", "/git/org/proj/info/refs", 403}, // dumb protocol
		{"GET", "/git/org/proj/HEAD", 404},
		{"GET", "/git/org/proj/objects/info/packs", 404},
		{"GET", "/git/nope/info/refs?service=git-upload-pack", 404},
		{"GET", "/git/../etc/info/refs?service=git-upload-pack", 404},
		{"GET", "/git/org/proj/info/refs?service=git-upload-pack", 200},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
	}
}

// TestFetchOverHTTPWithCredentials uses one merger's endpoint as the
// "Gerrit" of another, behind Basic auth: the credentials come from the
// password file and reach the server.
func TestFetchOverHTTPWithCredentials(t *testing.T) {
	root := t.TempDir()
	u, _, changes := fourChanges(t, root, "p")
	upstreamMerger := newMerger(t, root, nil, nil)
	mustPrepare(t, upstreamMerger, "warm.1", changes[:1], "") // creates its mirror
	// Publish the change refs in the serving mirror as Gerrit would.
	mirrorGit(t, upstreamMerger, "p", "fetch", "--quiet", u.dir, "+refs/changes/*:refs/changes/*")
	var authorized, denied atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		if !ok || user != "seakeeper" || pw != "s3cret" {
			denied.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="gerrit"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		authorized.Add(1)
		upstreamMerger.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()

	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A git wrapper records every command line the merger runs.
	argLog := filepath.Join(t.TempDir(), "args")
	wrapper := filepath.Join(t.TempDir(), "git")
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %q\nexec %q \"$@\"\n", argLog, real)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Dir: t.TempDir(), Source: func(p string) string { return srv.URL + "/git/" + p }, User: "seakeeper", PasswordFile: pwFile, Git: wrapper})
	if err != nil {
		t.Fatal(err)
	}
	res := mustPrepare(t, m, "http.1", changes, "")
	local := newMerger(t, root, nil, nil)
	if want := mustPrepare(t, local, "local.1", changes, ""); commitOf(t, res, "p", "master") != commitOf(t, want, "p", "master") {
		t.Errorf("over HTTP %+v, locally %+v", res.Commits, want.Commits)
	}
	if authorized.Load() == 0 || denied.Load() != 0 {
		t.Errorf("authorized %d, denied %d requests", authorized.Load(), denied.Load())
	}

	args, err := os.ReadFile(argLog)
	if err != nil || !strings.Contains(string(args), "fetch") {
		t.Fatalf("no fetch recorded: %q %v", args, err)
	}
	if token := base64.StdEncoding.EncodeToString([]byte("seakeeper:s3cret")); strings.Contains(string(args), "s3cret") || strings.Contains(string(args), token) {
		t.Errorf("password on a command line:\n%s", args)
	}

	// A wrong password is an error, not a prompt.
	if err := os.WriteFile(pwFile, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := u.change("p", "master", 900, u.commit("late", map[string]string{"late.txt": "l\n"}, changes[0].Commit))
	mirrorGit(t, upstreamMerger, "p", "fetch", "--quiet", u.dir, "+"+extra.Ref+":"+extra.Ref)
	if res := m.Prepare(t.Context(), "http.2", []pipeline.Spec{extra}, ""); res.Error == "" {
		t.Errorf("wrong password: %+v", res)
	}
}
