package scheduler_test

// The end-to-end test of `seakeeper serve`, in-process: the daemon's wiring
// (Serve) against gerrittest, the real kube-apiserver tier with argolocal
// running the Workflows, and the merger's git endpoint on the internal
// listener.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// serveProjectConfig is the project's seakeeper.yaml: the gate workflow
// clones the speculative state from the daemon's git endpoint and checks
// that the change under test is in it.
const serveProjectConfig = `pipelines:
  gate:
    workflow:
      spec:
        entrypoint: test
        templates:
          - name: test
            script:
              image: alpine/git
              command: [sh]
              source: |
                set -e
                git clone {{workflow.parameters.seakeeper-git-url}} src && cd src && git fetch origin {{workflow.parameters.seakeeper-ref}} && git checkout FETCH_HEAD && test -f feature.txt
`

// serveMainConfig is the daemon's configuration; %s are filled by the test.
const serveMainConfig = `gerrit:
  url: %q
  ssh: %q
  user: %q
  ssh-key-file: ssh/id_ed25519
  known-hosts-file: ssh/known_hosts
  http-password-file: http-password
kubernetes:
  kubeconfig: %q
  create-namespaces: true
  max-workflows: 4
  ttl: 1h
state-dir: state
web:
  listen: %q
  internal-listen: %q
  internal-url: %q
pipelines:
  - name: gate
    manager: dependent
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
`

// TestServeGatesChange is issue 6's "done when": `seakeeper serve` with a
// config pointing at gerrittest and the real kube-apiserver tier gates a
// change from +2 to merged, and stops within 10 s of its context's end.
func TestServeGatesChange(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	c := kubetest.StartShared(t)
	c.InstallArgoCRDs(t)
	dir := t.TempDir()

	// Gerrit, with the daemon's credentials written where the config says.
	srv, err := gerrittest.New(gerrittest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	writeDaemonCredentials(t, srv, dir)

	// A project of its own: the cluster is shared, and a Workflow left by
	// an earlier run (-count) must not be adopted.
	project := c.UniqueName("serve") + "/app"
	if err := srv.CreateProject(project, gerrittest.MergeIfNecessary); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PushToBranch(project, "master", map[string]string{"README": "demo\n"}, "Initial commit\n", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PutConfigFile(project, argo.ConfigFileName, serveProjectConfig, ""); err != nil {
		t.Fatal(err)
	}

	// Kubernetes: argolocal running the Workflows of the project's
	// namespace, which the daemon creates (create-namespaces), and a
	// kubeconfig for the daemon.
	ns := argo.Namespace("", project)
	kubeconfig := kubetest.WriteKubeconfig(t, c.AdminConfig(), "")
	startServeArgolocal(t, c, ns)

	// The main configuration.
	internalAddr, listenAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "seakeeper.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(serveMainConfig, srv.URL()+"/", srv.SSHAddr(), srv.User(), kubeconfig,
		listenAddr, internalAddr, "http://"+internalAddr))
	cfg, err := scheduler.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testlog.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	done := make(chan error, 1)
	go func() {
		done <- scheduler.Serve(ctx, cfg, scheduler.ServeOptions{
			Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			SettleDelay: 200 * time.Millisecond,
			NoSync:      true,
		})
	}()

	// Give the daemon its stream before the approval; the resync would
	// find the change anyway.
	eventuallyServe(t, done, 30*time.Second, "the daemon's stream-events session", func() bool {
		return srv.SSH().Sessions() > 0
	})
	start := time.Now()
	ch, err := srv.CreateChange(gerrittest.ChangeSpec{Project: project, Subject: "Add the feature",
		Files: map[string]string{"feature.txt": "feature\n"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Approve(project, ch.Number, "Code-Review", 2, "reviewer"); err != nil {
		t.Fatal(err)
	}
	eventuallyServe(t, done, 120*time.Second, "the change to be merged", func() bool {
		got, err := srv.Change(project, ch.Number)
		return err == nil && got.Status == "MERGED"
	})
	t.Logf("approved to merged in %v", time.Since(start).Round(time.Millisecond))
	votes, err := srv.Votes(project, ch.Number)
	if err != nil {
		t.Fatal(err)
	}
	verified := false
	for _, v := range votes {
		if v.Label == "Verified" && v.Value == 2 && v.User == srv.User() {
			verified = true
		}
	}
	if !verified {
		t.Errorf("no Verified +2 by %s; votes: %+v", srv.User(), votes)
	}

	// The verdict came from a Workflow argolocal ran to Succeeded.
	cs, err := versioned.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := cs.ArgoprojV1alpha1().Workflows(ns).List(ctx, metav1.ListOptions{LabelSelector: argo.LabelBuildSet})
	if err != nil {
		t.Fatal(err)
	}
	if len(wfs.Items) != 1 || wfs.Items[0].Status.Phase != wfv1.WorkflowSucceeded {
		t.Errorf("want one Succeeded workflow in %s, got %d: %+v", ns, len(wfs.Items), wfs.Items)
	}
	msgs, err := srv.Messages(project, ch.Number)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(msgs, func(m gerrittest.ChangeMessage) bool {
		return strings.Contains(m.Text, "Build succeeded (gate pipeline).")
	}) {
		t.Errorf("no success report among the messages: %+v", msgs)
	}

	stop := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		t.Logf("Serve returned %v after cancel", time.Since(stop).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its context's end")
	}
}

// startServeArgolocal runs argolocal on Seakeeper's Workflows in ns with
// the admin credentials until t ends.
func startServeArgolocal(t *testing.T, c *kubetest.Cluster, ns string) {
	t.Helper()
	cs, err := versioned.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	startArgolocal(t, cs, ns, t.TempDir())
}

// eventuallyServe polls ok until it holds, failing t after limit or when
// the daemon returns early.
func eventuallyServe(t *testing.T, done <-chan error, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		select {
		case err := <-done:
			t.Fatalf("waiting for %s: Serve returned %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
	}
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEventTypes: the stream filter holds the triggers' event types and
// the state changes every pipeline needs, once each.
func TestEventTypes(t *testing.T) {
	got := scheduler.EventTypes(&scheduler.Default().Config)
	want := []string{"change-abandoned", "change-merged", "change-restored", "comment-added",
		"patchset-created", "private-state-changed", "ref-updated", "wip-state-changed"}
	if !slices.Equal(got, want) {
		t.Errorf("EventTypes = %q, want %q", got, want)
	}

	// A gate alone triggers on comments only, but a new patchset must
	// still reach it to dequeue the old one.
	gate := scheduler.Default().Config
	gate.Pipelines = slices.DeleteFunc(gate.Pipelines, func(p pipeline.PipelineConfig) bool { return p.Name != "gate" })
	got = scheduler.EventTypes(&gate)
	want = []string{"change-abandoned", "change-merged", "change-restored", "comment-added",
		"patchset-created", "private-state-changed", "ref-updated", "wip-state-changed"}
	if len(gate.Pipelines) != 1 || !slices.Equal(got, want) {
		t.Errorf("gate only (%d pipelines): EventTypes = %q, want %q", len(gate.Pipelines), got, want)
	}
}
