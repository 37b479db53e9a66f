package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/store"
)

// TestDemoStory runs `seakeeper demo --exit --keep` in-process and checks
// that the story ended as it says: the printed summary, the branches of
// the fake Gerrit's repositories and the daemon's persisted history agree
// on three merges in the gate, one failure there, and its fix merged; and
// that everything was stopped (Gerrit's port is closed, the database is
// no longer locked).
func TestDemoStory(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	var out, errOut bytes.Buffer
	code := run([]string{"demo", "--exit", "--keep", "--dir", dir, "--listen", "127.0.0.1:0"}, &out, &errOut)
	t.Logf("demo output:\n%s", out.String())
	if code != 0 || errOut.Len() != 0 {
		t.Fatalf("demo: exit %d, stderr:\n%s\ndaemon log:\n%s", code, errOut.String(), readLog(dir))
	}

	// The summary.
	for _, want := range []string{
		"\n  merged, in order: demo/lib 1, demo/app 4, demo/app 2, demo/lib 3\n",
		"\n  failed in the gate: demo/lib 3 (Verified -2, then -1 on recheck); merged with patchset 2\n",
		"seakeeper on demo/lib 3 patchset 1: Verified-2 Build failed (gate pipeline).\n",
		"seakeeper on demo/lib 3 patchset 1: Verified-1 Build failed (check pipeline).\n",
		"\nStopped. Everything is kept in " + dir + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q", want)
		}
	}

	// Gerrit's repositories: what merged is on master, the first patchset
	// of the failing change is not.
	lib := filepath.Join(dir, "gerrit", "demo", "lib.git")
	app := filepath.Join(dir, "gerrit", "demo", "app.git")
	subjects := git(t, lib, "log", "--format=%s", "master")
	for _, s := range []string{"Add farewell()", "Make the greeting warmer"} {
		if !strings.Contains(subjects, s+"\n") {
			t.Errorf("demo/lib master lacks %q:\n%s", s, subjects)
		}
	}
	if got, want := git(t, lib, "show", "master:greet.sh"), warmGreet("!"); got != want {
		t.Errorf("demo/lib greet.sh on master = %q, want patchset 2's %q", got, want)
	}
	subjects = git(t, app, "log", "--format=%s", "master")
	for _, s := range []string{"Greet the world by default", "Say goodbye with farewell() of demo/lib"} {
		if !strings.Contains(subjects, s+"\n") {
			t.Errorf("demo/app master lacks %q:\n%s", s, subjects)
		}
	}

	// The daemon's history: opening the store proves the daemon released
	// it; its gate outcomes are the story's.
	st, err := store.Open(filepath.Join(dir, "state", "seakeeper.db"), store.Options{})
	if err != nil {
		t.Fatalf("opening the daemon's store after the demo: %v", err)
	}
	defer st.Close()
	got := map[string]string{}
	for _, project := range []string{"demo/lib", "demo/app"} {
		hs, err := st.History("gate", project, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			got[fmt.Sprintf("%s %d,%d", h.Project, h.Change, h.Patchset)] += h.Outcome
		}
	}
	want := map[string]string{
		"demo/lib 1,1": "success", "demo/lib 3,1": "failure", "demo/lib 3,2": "success",
		"demo/app 2,1": "success", "demo/app 4,1": "success",
	}
	if !maps.Equal(got, want) {
		t.Errorf("gate history = %v, want %v", got, want)
	}

	// Gerrit was stopped: its port no longer answers.
	m := regexp.MustCompile(`Gerrit \(fake\) +http://([0-9.:]+)/`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("the output names no Gerrit URL")
	}
	if c, err := net.DialTimeout("tcp", m[1], 5*time.Second); err == nil {
		c.Close()
		t.Errorf("Gerrit's %s still answers after the demo", m[1])
	}
}

// TestDemoCtrlC: SIGINT stops the demo cleanly, in the middle of the story
// and once it waits after the story: exit 0, the directory removed.
func TestDemoCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo")
	}
	for _, tc := range []struct {
		name, after, says string
	}{
		{"mid-story", "1. Four uploads", "Interrupted: the story did not finish."},
		{"after the story", "Press Ctrl-C to stop.", "\nSummary (the story took "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "demo")
			out, errOut := &testlog.Buffer{}, &testlog.Buffer{}
			done := make(chan int, 1)
			go func() { done <- run([]string{"demo", "--dir", dir, "--listen", "127.0.0.1:0"}, out, errOut) }()
			// The signal handler is installed before anything is printed.
			deadline := time.Now().Add(2 * time.Minute)
			for !strings.Contains(out.String(), tc.after) {
				select {
				case code := <-done:
					t.Fatalf("demo ended with %d before %q; stdout:\n%s\nstderr:\n%s", code, tc.after, out.String(), errOut.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %q within 2m; stdout:\n%s", tc.after, out.String())
				}
			}
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if code != 0 || errOut.String() != "" {
					t.Errorf("exit %d after SIGINT, stderr:\n%s", code, errOut.String())
				}
			case <-time.After(2 * time.Minute):
				t.Fatalf("demo still running 2m after SIGINT; stdout:\n%s", out.String())
			}
			for _, want := range []string{tc.says, "\nStopped. Removed " + dir + "\n"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("the output lacks %q:\n%s", want, out.String())
				}
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s is still there after the demo: %v", dir, err)
			}
		})
	}
}

// TestDemoDirMustBeEmpty: --dir refuses a directory with files in it,
// since the demo removes its directory at the end.
func TestDemoDirMustBeEmpty(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious.txt")
	if err := os.WriteFile(precious, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := seakeeper(t, "demo", "--exit", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "--dir "+dir+": the directory is not empty") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("the demo touched a file of --dir: %v", err)
	}
}

// TestDemoListenBusy: a busy --listen given explicitly is an error naming
// the flag; the built-in default falls back to a free port.
func TestDemoListenBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	if _, _, err := pickAddr(busy, true); err == nil {
		t.Errorf("pickAddr(%s, explicit) = nil error, want the address in use", busy)
	}
	code, _, errOut := seakeeper(t, "demo", "--exit", "--dir", filepath.Join(t.TempDir(), "d"), "--listen", busy)
	if code != 1 || !strings.Contains(errOut, "--listen: ") || !strings.Contains(errOut, busy) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	got, fellBack, err := pickAddr(busy, false)
	if err != nil || !fellBack || got == busy || !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("pickAddr(%s, default) = %q, %v, %v; want another port of 127.0.0.1", busy, got, fellBack, err)
	}
}

// TestImportProjectsNeedsConfig: a sample project without seakeeper.yaml
// is refused with its directory named.
func TestImportProjectsNeedsConfig(t *testing.T) {
	g, err := gerrittest.New(gerrittest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	files := fstest.MapFS{"root/x/README.md": {Data: []byte("x\n")}}
	err = importProjects(g, files, "root")
	if err == nil || !strings.Contains(err.Error(), "root/x: no seakeeper.yaml") {
		t.Errorf("importProjects = %v, want an error naming root/x and seakeeper.yaml", err)
	}
}

func git(t *testing.T, gitDir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), "git", append([]string{"--git-dir", gitDir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func readLog(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "seakeeper.log"))
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestFakeArgo: the demo's Argo API refuses a stale update with Conflict,
// replays to a watch the writes made since the list it starts from, and
// passes on only what the watch's selectors match.
func TestFakeArgo(t *testing.T) {
	ctx := context.Background()
	f := newFakeArgo()
	wfs := f.ArgoprojV1alpha1().Workflows("ci-demo")
	mk := func(name string, labels map[string]string) *wfv1.Workflow {
		return &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ci-demo", Labels: labels}}
	}
	first, err := wfs.Create(ctx, mk("first", map[string]string{"seakeeper.io/buildset": "b1"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wfs.Create(ctx, mk("first", nil), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create of first: %v, want AlreadyExists", err)
	}
	list, err := wfs.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Written after the list, before the watch.
	updated := first.DeepCopy()
	updated.Status.Phase = wfv1.WorkflowRunning
	if _, err := wfs.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale := first.DeepCopy()
	stale.Status.Phase = wfv1.WorkflowFailed
	if _, err := wfs.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update with resourceVersion %s after another update: %v, want Conflict", stale.ResourceVersion, err)
	}
	if _, err := wfs.Create(ctx, mk("other", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	w, err := wfs.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, LabelSelector: "seakeeper.io/buildset"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := wfs.Patch(ctx, "first", types.MergePatchType, []byte(`{"spec":{"shutdown":"Terminate"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case ev := <-w.ResultChan():
			wf := ev.Object.(*wfv1.Workflow)
			got = append(got, fmt.Sprintf("%s %s %s %s", ev.Type, wf.Name, wf.Status.Phase, wf.Spec.Shutdown))
		case <-time.After(10 * time.Second):
			t.Fatalf("watch events so far %q, want 2", got)
		}
	}
	want := []string{"MODIFIED first Running ", "MODIFIED first Running Terminate"}
	if !slices.Equal(got, want) {
		t.Errorf("watch from the list's resourceVersion saw %q, want %q", got, want)
	}
}

// TestDemoPaceMustNotBeNegative: a negative --pace is a usage error that
// names the flag, before anything starts.
func TestDemoPaceMustNotBeNegative(t *testing.T) {
	code, _, errOut := seakeeper(t, "demo", "--exit", "--pace", "-1s")
	if code != 2 || !strings.Contains(errOut, "--pace must not be negative (got -1s)") {
		t.Errorf("exit %d, stderr %q; want 2 and the flag named", code, errOut)
	}
}
