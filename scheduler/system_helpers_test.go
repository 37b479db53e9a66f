package scheduler_test

// The harness of the system tests (system_test.go, system_gate_test.go):
// one scenario is one sysEnv, a whole daemon (scheduler.Serve) of its own
// against a gerrittest server of its own, argolocal running the Workflows
// on the package's shared kube-apiserver, and a test-owned directory the
// workflows write what they saw into. The configurations are in
// system_config_test.go, what the tests read back in system_records_test.go.

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/argo/argolocal"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// TestMain shares one kube-apiserver among the package's end-to-end tests.
func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// sysOptions describe a scenario's world.
type sysOptions struct {
	// Projects are the scenario's project names without their unique
	// prefix ("a", "b"); all of them share the gate queue "shared".
	Projects []string
	// Pipelines name the daemon's pipelines (keys of sysPipelines).
	Pipelines []string
	// Hold keeps every workflow waiting in its checkout step until the test
	// releases it (release); otherwise they all run at once.
	Hold bool
}

// sysEnv is one running scenario.
type sysEnv struct {
	t        *testing.T
	gerrit   *gerrittest.Server
	wf       versioned.Interface
	dir      string   // the test-owned directory the workflows write into
	projects []string // full project names, in sysOptions order
	stopped  chan struct{}
	serveErr error
	logs     *testlog.Buffer
}

// startSystem starts a scenario: gerrittest with the projects (an initial
// commit and seakeeper.yaml each), argolocal for their namespaces, and the
// daemon, connected to Gerrit's event stream. Everything stops when t
// ends; if t failed, the daemon's log, argolocal's and every workflow
// node's output are printed.
func startSystem(t *testing.T, o sysOptions) *sysEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	c := kubetest.StartShared(t)
	c.InstallArgoCRDs(t)
	cs, err := versioned.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &sysEnv{t: t, wf: cs, dir: t.TempDir(), stopped: make(chan struct{}), logs: &testlog.Buffer{}}
	for _, d := range []string{"runs", "started", "release", "ws"} {
		if err := os.Mkdir(filepath.Join(e.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if !o.Hold {
		e.release("all")
	}

	// The workflows reach the daemon's git endpoint through this proxy,
	// whose address is known before the daemon listens on port 0.
	var internal atomic.Pointer[url.URL]
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		if u := internal.Load(); u != nil {
			r.SetURL(u)
		}
	}})
	t.Cleanup(proxy.Close)

	srv, err := gerrittest.New(gerrittest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e.gerrit = srv
	cfgDir := t.TempDir()
	writeDaemonCredentials(t, srv, cfgDir)

	prefix := c.UniqueName("sys")
	names := o.Pipelines
	var pipelines strings.Builder
	for _, n := range names {
		y, ok := sysPipelines[n]
		if !ok {
			t.Fatalf("no pipeline %q in sysPipelines", n)
		}
		pipelines.WriteString(y)
	}
	argoWork := t.TempDir()
	for _, p := range o.Projects {
		e.projects = append(e.projects, prefix+"/"+p)
	}
	pcfg := sysProjectConfig(e.dir, proxy.URL+"/git", e.projects, names)
	if _, err := argo.ParseProjectConfig(argo.ConfigFileName, "", []byte(pcfg), names); err != nil {
		t.Fatalf("the scenario's seakeeper.yaml is invalid: %v\n%s", err, pcfg)
	}
	for _, p := range e.projects {
		if err := srv.CreateProject(p, gerrittest.MergeIfNecessary); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.PushToBranch(p, "master", map[string]string{"README": p + "\n"}, "Initial commit\n", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.PutConfigFile(p, argo.ConfigFileName, pcfg, ""); err != nil {
			t.Fatal(err)
		}
		startArgolocal(t, cs, argo.Namespace("", p), argoWork)
	}

	cfgPath := filepath.Join(cfgDir, "seakeeper.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(sysMainConfig, srv.URL()+"/", srv.SSHAddr(), srv.User(),
		kubetest.WriteKubeconfig(t, c.AdminConfig(), ""), sysArgoURL, sysStatusURL, proxy.URL,
		strings.Join(e.projects, ", "), pipelines.String()))
	cfg, err := scheduler.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(e.stopped)
		e.serveErr = scheduler.Serve(ctx, cfg, scheduler.ServeOptions{
			Logger:      slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			SettleDelay: 50 * time.Millisecond,
			NoSync:      true,
			Started: func(a scheduler.Addrs) {
				internal.Store(&url.URL{Scheme: "http", Host: a.Internal})
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-e.stopped:
			if e.serveErr != nil {
				t.Errorf("Serve: %v", e.serveErr)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return within 30s of its context's end")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", e.logs.String())
			e.logWorkflowOutput(argoWork)
		}
	})
	e.await(30*time.Second, "the daemon's stream-events session", func() bool {
		return srv.SSH().Sessions() > 0 && internal.Load() != nil
	})
	return e
}

// writeDaemonCredentials writes the files the main configuration names: a
// new SSH key that srv accepts for its user, srv's host key and the HTTP
// password.
func writeDaemonCredentials(t *testing.T, srv *gerrittest.Server, dir string) {
	t.Helper()
	if _, err := srv.WriteCredentials(dir); err != nil {
		t.Fatal(err)
	}
}

// await polls ok until it holds; it fails the test after limit or when the
// daemon stops early.
func (e *sysEnv) await(limit time.Duration, what string, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		select {
		case <-e.stopped:
			e.t.Fatalf("waiting for %s: Serve returned %v", what, e.serveErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s within %v", what, limit)
		}
	}
}

// release lets the held workflows of change-patchset ("12-1") go on, or
// all of them ("all").
func (e *sysEnv) release(name string) {
	e.t.Helper()
	writeFile(e.t, filepath.Join(e.dir, "release", name), "")
}

// started reports whether the workflow named wf has begun its checkout.
func (e *sysEnv) started(wf string) bool {
	_, err := os.Stat(filepath.Join(e.dir, "started", wf))
	return err == nil
}

// newChange uploads a change to project (index into e.projects) that adds
// one file named after subject, or the given files.
func (e *sysEnv) newChange(project int, subject string, files map[string]string, dependsOn ...string) *gerrittest.Change {
	e.t.Helper()
	if files == nil {
		files = map[string]string{strings.ReplaceAll(subject, " ", "-") + ".txt": subject + "\n"}
	}
	ch, err := e.gerrit.CreateChange(gerrittest.ChangeSpec{Project: e.projects[project], Subject: subject,
		Files: files, DependsOn: dependsOn})
	if err != nil {
		e.t.Fatal(err)
	}
	return ch
}

func (e *sysEnv) approve(ch *gerrittest.Change) {
	e.t.Helper()
	if err := e.gerrit.Approve(ch.Project, ch.Number, "Code-Review", 2, "reviewer"); err != nil {
		e.t.Fatal(err)
	}
}

func (e *sysEnv) change(ch *gerrittest.Change) *gerrittest.Change {
	e.t.Helper()
	got, err := e.gerrit.Change(ch.Project, ch.Number)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

func (e *sysEnv) merged(ch *gerrittest.Change) bool { return e.change(ch).Status == "MERGED" }

// vote returns the daemon's vote on label on the current patchset.
func (e *sysEnv) vote(ch *gerrittest.Change, label string) (value int, ok bool) {
	e.t.Helper()
	votes, err := e.gerrit.Votes(ch.Project, ch.Number)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, v := range votes {
		if v.Label == label && v.User == e.gerrit.User() {
			value, ok = v.Value, true
		}
	}
	return value, ok
}

// reports returns the reports the daemon posted on a change (its messages
// tagged autogenerated:seakeeper:…), oldest first.
func (e *sysEnv) reports(ch *gerrittest.Change) []gerrittest.ChangeMessage {
	e.t.Helper()
	msgs, err := e.gerrit.Messages(ch.Project, ch.Number)
	if err != nil {
		e.t.Fatal(err)
	}
	return slices.DeleteFunc(msgs, func(m gerrittest.ChangeMessage) bool {
		return m.Author != e.gerrit.User() || !strings.HasPrefix(m.Tag, "autogenerated:seakeeper:")
	})
}

// history returns the subjects of what project's master got in Gerrit,
// oldest first, as the workflows record it (a merge commit stands for the
// commit it merged).
func (e *sysEnv) history(project string) []string {
	e.t.Helper()
	gitDir := filepath.Join(e.gerrit.Dir(), filepath.FromSlash(project)+".git")
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"--git-dir", gitDir}, args...)...).Output()
		if err != nil {
			e.t.Fatalf("git %s in %s: %v", strings.Join(args, " "), gitDir, err)
		}
		return strings.TrimSpace(string(out))
	}
	var out []string
	for _, l := range strings.Split(git("log", "--first-parent", "--reverse", "--format=%H %P", "refs/heads/master"), "\n") {
		f := strings.Fields(l)
		c := f[0]
		if len(f) == 3 {
			c = f[2]
		}
		out = append(out, git("log", "-1", "--format=%s", c))
	}
	return out
}

// mergeOrder returns the change numbers of the change-merged events, in
// the order Gerrit published them.
func (e *sysEnv) mergeOrder() []int {
	var out []int
	for _, ev := range e.gerrit.Events() {
		if ev.Type == "change-merged" && ev.Change != nil {
			out = append(out, int(ev.Change.Number))
		}
	}
	return out
}

// logWorkflowOutput prints every workflow node's output under argolocal's
// work directory, and the records.
func (e *sysEnv) logWorkflowOutput(workDir string) {
	_ = filepath.WalkDir(workDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") {
			data, _ := os.ReadFile(path)
			rel, _ := filepath.Rel(workDir, path)
			e.t.Logf("workflow output %s:\n%s", rel, data)
		}
		return nil
	})
	for _, r := range e.runs() {
		e.t.Logf("workflow record: %+v", r)
	}
}

// startArgolocal runs argolocal on Seakeeper's Workflows in ns with node
// directories under workDir until t ends.
func startArgolocal(t *testing.T, cs versioned.Interface, ns, workDir string) {
	t.Helper()
	logs := &testlog.Buffer{}
	ctl, err := argolocal.New(argolocal.Config{
		Client:        cs,
		Namespace:     ns,
		LabelSelector: argo.LabelBuildSet,
		WorkDir:       workDir,
		Env:           []string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1"},
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("argolocal: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("argolocal's Run did not return")
		}
		if t.Failed() {
			t.Logf("argolocal log (%s):\n%s", ns, logs.String())
		}
	})
}
