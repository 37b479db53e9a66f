//go:build linux

package main

// The plumbing of the chaos tests (chaos_test.go): the daemon as a child
// process, and the world it runs in — gerrittest in this process, the real
// kube-apiserver tier, argolocal running the Workflows here, and a record of
// every Workflow phase seen.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	informers "github.com/argoproj/argo-workflows/v3/pkg/client/informers/externalversions/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/argo/argolocal"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// chaosDaemonEnv, set to a configuration file, turns the test binary into
// the daemon: TestMain runs `seakeeper serve` with it instead of the tests.
const chaosDaemonEnv = "SEAKEEPER_CHAOS_DAEMON_CONFIG"

// chaosSettleDelay is the child daemon's settle delay.
const chaosSettleDelay = 50 * time.Millisecond

func TestMain(m *testing.M) {
	if path := os.Getenv(chaosDaemonEnv); path != "" {
		os.Exit(runChaosDaemon(path))
	}
	os.Exit(kubetest.Main(m))
}

// runChaosDaemon is the child process: the wiring of `seakeeper serve`
// (scheduler.Serve, the real fsync'd store) with a short settle delay and
// debug JSON logs on stderr. It stops cleanly on SIGTERM; the tests kill it
// with SIGKILL.
func runChaosDaemon(path string) int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := scheduler.LoadConfig(path)
	if err != nil {
		log.Error("chaos daemon: bad configuration", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := scheduler.Serve(ctx, cfg, scheduler.ServeOptions{Logger: log, SettleDelay: chaosSettleDelay}); err != nil {
		log.Error("seakeeper serve failed", "err", err)
		return 1
	}
	return 0
}

// chaosWorld is what the daemon talks to: one gerrittest, the shared
// kube-apiserver with argolocal running every Seakeeper Workflow, and the
// credentials files. Scenarios share it and use fresh project names.
type chaosWorld struct {
	t *testing.T
	// uniqueName makes project names never used before on the cluster,
	// so that namespaces are fresh too.
	uniqueName func(prefix string) string
	wf         versioned.Interface
	gerrit     *gerrittest.Server
	dir        string // credentials: ssh/, http-password
	kubeconfig string
	phases     *phaseLog
	argoLog    *testlog.Buffer
}

func newChaosWorld(t *testing.T) *chaosWorld {
	t.Helper()
	c := kubetest.StartShared(t)
	c.InstallArgoCRDs(t)
	w := &chaosWorld{t: t, uniqueName: c.UniqueName, dir: t.TempDir(), argoLog: &testlog.Buffer{}}
	var err error
	if w.wf, err = versioned.NewForConfig(c.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	if w.gerrit, err = gerrittest.New(gerrittest.Options{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.gerrit.Close() })

	// The daemon's credentials, where every configuration says.
	if _, err := w.gerrit.WriteCredentials(w.dir); err != nil {
		t.Fatal(err)
	}
	w.kubeconfig = kubetest.WriteKubeconfig(t, c.AdminConfig(), "")

	w.phases = startPhaseLog(t, w.wf)
	w.startArgolocal()
	return w
}

// startArgolocal runs argolocal on Seakeeper's Workflows in every
// namespace until the test ends. Only one test at a time may use it (no
// t.Parallel): two controllers must not watch the same Workflows.
func (w *chaosWorld) startArgolocal() {
	t := w.t
	ctl, err := argolocal.New(argolocal.Config{
		Client:        w.wf,
		LabelSelector: argo.LabelBuildSet,
		WorkDir:       t.TempDir(),
		Parallel:      8,
		Env:           []string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1"},
		Logger:        slog.New(slog.NewTextHandler(w.argoLog, nil)),
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
		case <-time.After(60 * time.Second):
			t.Error("argolocal's Run did not return within 60s")
		}
	})
}

// deleteWorkflows removes the Workflows of a finished scenario, so that
// later daemons do not list them at every start.
func (w *chaosWorld) deleteWorkflows(t *testing.T, projects []string) {
	if w.wf == nil {
		return
	}
	for _, p := range projects {
		err := w.wf.ArgoprojV1alpha1().Workflows(argo.Namespace("", p)).DeleteCollection(context.Background(),
			metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: argo.LabelBuildSet})
		if err != nil {
			t.Logf("deleting the workflows of %s: %v", p, err)
		}
	}
}

// phaseLog remembers every phase each Workflow (by UID) was seen in, so
// that a Workflow the daemon deletes later still counts.
type phaseLog struct {
	mu     sync.Mutex
	phases map[string]map[wfv1.WorkflowPhase]bool
}

func startPhaseLog(t *testing.T, cs versioned.Interface) *phaseLog {
	t.Helper()
	l := &phaseLog{phases: map[string]map[wfv1.WorkflowPhase]bool{}}
	inf := informers.NewFilteredWorkflowInformer(cs, "", 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = argo.LabelBuildSet })
	see := func(obj any) {
		wf, ok := obj.(*wfv1.Workflow)
		if !ok {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		m := l.phases[string(wf.UID)]
		if m == nil {
			m = map[wfv1.WorkflowPhase]bool{}
			l.phases[string(wf.UID)] = m
		}
		m[wf.Status.Phase] = true
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.RunWithContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("the workflow phase log did not sync")
	}
	return l
}

// succeeded reports whether the Workflow with uid was seen Succeeded.
func (l *phaseLog) succeeded(uid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phases[uid][wfv1.WorkflowSucceeded]
}

// daemonProc is the daemon as a child process: the test binary run with
// chaosDaemonEnv, in a process group of its own so that SIGKILL takes its
// git children along, as the end of a container would, and killed by the
// kernel if the test binary dies first (a test timeout exits without
// cleanups). Its stdout and stderr are appended to one log file across
// restarts.
type daemonProc struct {
	t       *testing.T
	cfgPath string
	logPath string
	log     *os.File
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has ended
	waitErr error         // its exit, once exited is closed
	starts  int
	cpu     time.Duration // CPU time of the ended processes, their children included
}

func newDaemonProc(t *testing.T, cfgPath, logPath string) *daemonProc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{t: t, cfgPath: cfgPath, logPath: logPath, log: f}
	t.Cleanup(func() {
		d.stop()
		f.Close()
	})
	return d
}

// start starts a daemon process; the previous one must have ended.
func (d *daemonProc) start() {
	d.t.Helper()
	d.starts++
	fmt.Fprintf(d.log, "=== chaos: daemon start %d at %s\n", d.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), chaosDaemonEnv+"="+d.cfgPath)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("starting the daemon: %v", err)
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	exited := d.exited
	go func() {
		d.waitErr = cmd.Wait()
		if st := cmd.ProcessState; st != nil {
			d.cpu += st.UserTime() + st.SystemTime()
		}
		close(exited)
	}()
}

// kill sends SIGKILL to the daemon's process group and waits for the
// daemon to end.
func (d *daemonProc) kill() {
	d.t.Helper()
	if d.cmd == nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-d.exited:
	case <-time.After(60 * time.Second):
		d.t.Fatalf("daemon pid %d did not end within 60s of SIGKILL", d.cmd.Process.Pid)
	}
	fmt.Fprintf(d.log, "=== chaos: daemon %d killed (SIGKILL) at %s\n", d.starts, time.Now().Format(time.RFC3339Nano))
	d.cmd = nil
}

// stop kills whatever is left of the daemon, without failing.
func (d *daemonProc) stop() {
	if d.cmd != nil {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
		d.cmd = nil
	}
}

// alive returns an error when the daemon ended without being killed.
func (d *daemonProc) alive() error {
	if d.cmd == nil {
		return errors.New("daemon not running")
	}
	select {
	case <-d.exited:
		return fmt.Errorf("daemon (start %d) exited by itself: %v", d.starts, d.waitErr)
	default:
		return nil
	}
}

// logText returns the daemon's log so far.
func (d *daemonProc) logText() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return string(b)
}

// logProblems returns what in the log no run of the daemon may print: a
// data race report, a panic, a fatal runtime error.
func (d *daemonProc) logProblems() []string {
	var out []string
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if strings.Contains(d.logText(), bad) {
			out = append(out, fmt.Sprintf("the daemon log contains %q", bad))
		}
	}
	return out
}

// waitFor polls ok every 50ms until it holds; it fails t after limit, or
// at once when the daemon ends by itself.
func (d *daemonProc) waitFor(limit time.Duration, what string, ok func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if err := d.alive(); err != nil {
			d.t.Fatalf("waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chaosMainConfig is the daemon's configuration; the %s are filled by
// writeChaosConfig.
const chaosMainConfig = `gerrit:
  url: %q
  ssh: %q
  user: %q
  ssh-key-file: %q
  known-hosts-file: %q
  http-password-file: %q
kubernetes:
  kubeconfig: %q
  create-namespaces: true
  max-workflows: 20
  ttl: 1h
state-dir: %q
web:
  listen: %q
  internal-listen: %q
  internal-url: %q
queues:
  - name: chaos
    projects: [%s]
pipelines:
  - name: gate
    manager: dependent
    projects: %q
    trigger:
      - event: [comment-added]
        approval: [{label: Code-Review, value: [2]}]
    require:
      open: true
      current-patchset: true
      approval: [{label: Code-Review, value: [2]}]
    report:
      success: {labels: {Verified: 2}, submit: true, message: Build succeeded (gate pipeline).}
      failure: {labels: {Verified: -2}, message: Build failed (gate pipeline).}
      merge-conflict: {labels: {Verified: -2}, message: Merge failed (gate pipeline).}
`

// writeChaosConfig writes the daemon's configuration for a scenario whose
// projects, all named prefix/..., share one queue, with its state in
// dir/state; it returns the file and the internal URL workflows fetch
// from. The gate takes only the scenario's projects: the changes earlier
// scenarios left open (approved, reported failed) are no business of this
// daemon, whose fresh database does not know it reported on them.
func (w *chaosWorld) writeChaosConfig(t *testing.T, dir, prefix string, projects []string) (path, internalURL string) {
	t.Helper()
	internal := chaosFreeAddr(t)
	quoted := make([]string, len(projects))
	for i, p := range projects {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	internalURL = "http://" + internal
	path = filepath.Join(dir, "seakeeper.yaml")
	chaosWrite(t, path, fmt.Sprintf(chaosMainConfig,
		w.gerrit.URL()+"/", w.gerrit.SSHAddr(), w.gerrit.User(),
		filepath.Join(w.dir, "ssh", "id_ed25519"), filepath.Join(w.dir, "ssh", "known_hosts"),
		filepath.Join(w.dir, "http-password"), w.kubeconfig, filepath.Join(dir, "state"),
		chaosFreeAddr(t), internal, internalURL, strings.Join(quoted, ", "), regexp.QuoteMeta(prefix)+"/.*"))
	if _, err := scheduler.LoadConfig(path); err != nil {
		t.Fatalf("the chaos configuration: %v", err)
	}
	return path, internalURL
}

// chaosFreeAddr returns a loopback host:port that was free a moment ago.
func chaosFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func chaosWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
