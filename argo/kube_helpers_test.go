package argo_test

// Helpers of the real Kubernetes API tier (kube_tier_test.go and
// kube_bench_test.go): the adapter and argolocal each run with a
// ServiceAccount of their own that holds exactly the verbs they need, so
// that a call they were not meant to make fails with Forbidden.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/argo/argolocal"
	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
	"github.com/seakeeper-ci/seakeeper/internal/testlog"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// adapterVerbs are all the adapter needs in a project namespace: create
// (Submit), get (AlreadyExists ⇒ adopt), list and watch (the informer,
// hence Adopt), patch (Cancel) and delete (the backstop).
func adapterVerbs() map[string][]string {
	return map[string][]string{"workflows": {"create", "get", "list", "watch", "patch", "delete"}}
}

// argolocalVerbs are what argolocal needs (see its package doc).
func argolocalVerbs() map[string][]string {
	return map[string][]string{
		"workflows":         {"get", "list", "watch", "update"},
		"workflowtemplates": {"get"},
	}
}

// kubeArgoURL is the Argo UI the adapter links to.
const kubeArgoURL = "https://argo.example.test"

// waitLimit bounds every wait of this tier: generous, because go test
// runs other packages beside (under -race), and never an assertion on
// speed.
const waitLimit = 90 * time.Second

// cluster returns the package's shared API server with Argo's CRDs.
func cluster(tb testing.TB) *kubetest.Cluster {
	tb.Helper()
	c := kubetest.StartShared(tb)
	c.InstallArgoCRDs(tb)
	return c
}

// newProject returns a fresh Gerrit project name (prefix plus a number
// unique on the cluster) and its namespace under the default template. The
// name holds a slash, so the namespace carries the hash suffix.
func newProject(c *kubetest.Cluster, prefix string) (project, ns string) {
	project = c.UniqueName("org/" + prefix)
	return project, argo.Namespace("", project)
}

func wfClient(tb testing.TB, cfg *rest.Config) versioned.Interface {
	tb.Helper()
	cs, err := versioned.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// configs is a ConfigSource serving a fixed seakeeper.yaml per project,
// with the content's hash as the refs/meta/config commit. It is not
// modified after creation.
type configs map[string]string

func (s configs) ConfigFile(_ context.Context, project, path string) ([]byte, string, error) {
	if path != argo.ConfigFileName {
		return nil, "", fmt.Errorf("unexpected config file %q", path)
	}
	content, ok := s[project]
	if !ok {
		return nil, "", fs.ErrNotExist
	}
	sum := sha256.Sum256([]byte(content))
	return []byte(content), hex.EncodeToString(sum[:20]), nil
}

// testLog is a logger whose lines are printed only if tb fails.
func testLog(tb testing.TB, name string) *slog.Logger {
	w := &testlog.Buffer{}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("log of %s:\n%s", name, w.String())
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// adapter is a started argo.Adapter and what it delivered.
type adapter struct {
	*argo.Adapter
	ctx     context.Context
	stop    context.CancelFunc
	res     *results
	flushes int // settle's submissions
}

// startAdapter starts an adapter in the namespaced mode, authenticated by
// cfg, reading project config from src; mod adjusts the options. It is
// stopped when tb ends, or earlier with Shutdown.
func startAdapter(tb testing.TB, cfg *rest.Config, src argo.ConfigSource, mod func(*argo.Options)) *adapter {
	tb.Helper()
	opts := argo.Options{
		Client:  wfClient(tb, cfg),
		Configs: argo.NewConfigCache(src, argo.ConfigCacheOptions{}),
		Render: argo.RenderOptions{
			InternalURL:    "http://seakeeper.internal.test:8081",
			TTL:            2 * time.Hour,
			DefaultTimeout: 20 * time.Minute,
		},
		ArgoURL:    kubeArgoURL,
		Namespaced: true,
		Backoff:    argo.Backoff{Initial: 50 * time.Millisecond, Max: time.Second},
		Log:        testLog(tb, "the adapter"),
	}
	if mod != nil {
		mod(&opts)
	}
	a, err := argo.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ad := &adapter{Adapter: a, ctx: ctx, stop: cancel}
	tb.Cleanup(ad.Shutdown)
	if err := a.Start(ctx); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	ad.res = collect(a)
	return ad
}

// Shutdown stops the adapter, as a daemon that exits does, and waits until
// its Results channel is closed.
func (a *adapter) Shutdown() {
	a.stop()
	if a.res != nil {
		<-a.res.done
	}
}

// submit submits act and fails tb if Submit does not account for it.
func (a *adapter) submit(tb testing.TB, act pipeline.Action) {
	tb.Helper()
	if err := a.Submit(a.ctx, act); err != nil {
		tb.Fatalf("Submit %s: %v", act.BuildSet, err)
	}
}

// results records what an adapter delivers on Results, and when.
type results struct {
	mu     sync.Mutex
	all    []pipeline.BuildResult
	at     []time.Time   // when each of all was received
	notify chan struct{} // signalled after each result
	done   chan struct{} // closed with Results
}

func collect(a *argo.Adapter) *results {
	r := &results{notify: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for res := range a.Results() {
			now := time.Now()
			r.mu.Lock()
			r.all = append(r.all, res)
			r.at = append(r.at, now)
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		}
	}()
	return r
}

// since returns the results received after the first i, with their times.
func (r *results) since(i int) ([]pipeline.BuildResult, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all[i:]), slices.Clone(r.at[i:])
}

// of returns the results of buildset bs so far.
func (r *results) of(bs string) []pipeline.BuildResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pipeline.BuildResult
	for _, res := range r.all {
		if res.BuildSet == bs {
			out = append(out, res)
		}
	}
	return out
}

// wait returns the first result of bs that ok accepts, failing tb when
// none arrives.
func (r *results) wait(tb testing.TB, bs, what string, ok func(pipeline.BuildResult) bool) pipeline.BuildResult {
	tb.Helper()
	var found pipeline.BuildResult
	eventually(tb, fmt.Sprintf("a result of %s that is %s", bs, what), func() bool {
		for _, res := range r.of(bs) {
			if ok(res) {
				found = res
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("results of %s: %+v", bs, r.of(bs)) })
	return found
}

// phase waits for a result of bs in phase p.
func (r *results) phase(tb testing.TB, bs string, p pipeline.Phase) pipeline.BuildResult {
	tb.Helper()
	return r.wait(tb, bs, string(p), func(res pipeline.BuildResult) bool { return res.Phase == p })
}

// final waits for the terminal result of bs.
func (r *results) final(tb testing.TB, bs string) pipeline.BuildResult {
	tb.Helper()
	return r.wait(tb, bs, "terminal", func(res pipeline.BuildResult) bool { return res.Phase.Terminal() })
}

// eventually polls cond until it holds, failing tb after waitLimit with
// what and, when given, the state that detail describes.
func eventually(tb testing.TB, what string, cond func() bool, detail func() string) {
	tb.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out waiting for " + what
			if detail != nil {
				msg += "\n" + detail()
			}
			tb.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getWorkflow fetches a Workflow as the API server holds it; nil when it
// does not exist.
func getWorkflow(tb testing.TB, cs versioned.Interface, ns, name string) *wfv1.Workflow {
	tb.Helper()
	wf, err := cs.ArgoprojV1alpha1().Workflows(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	return wf
}

// waitWorkflow waits until the Workflow exists and ok accepts it.
func waitWorkflow(tb testing.TB, cs versioned.Interface, ns, name, what string, ok func(*wfv1.Workflow) bool) *wfv1.Workflow {
	tb.Helper()
	var wf *wfv1.Workflow
	eventually(tb, fmt.Sprintf("workflow %s/%s to be %s", ns, name, what), func() bool {
		wf = getWorkflow(tb, cs, ns, name)
		return wf != nil && ok(wf)
	}, func() string {
		if wf == nil {
			return "it does not exist"
		}
		return fmt.Sprintf("spec.shutdown %q, status %+v", wf.Spec.Shutdown, wf.Status)
	})
	return wf
}

// startArgolocal runs argolocal on the Workflows labelled by Seakeeper in
// namespace ns, authenticated by cfg, until tb ends; it returns its work
// directory.
func startArgolocal(tb testing.TB, cfg *rest.Config, ns string) string {
	tb.Helper()
	dir := tb.TempDir() // before the Cleanup below, so removed after Run returned
	ctl, err := argolocal.New(argolocal.Config{
		Client:        wfClient(tb, cfg),
		Namespace:     ns,
		LabelSelector: argo.LabelBuildSet,
		WorkDir:       dir,
		Env:           []string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1"},
		Logger:        testLog(tb, "argolocal"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("argolocal: %v", err)
			}
		case <-time.After(waitLimit):
			tb.Error("argolocal's Run did not return")
		}
	})
	return dir
}

// argolocalIn gives argolocal a ServiceAccount of its own in ns holding
// exactly argolocalVerbs there.
func argolocalIn(tb testing.TB, c *kubetest.Cluster, ns string) *rest.Config {
	tb.Helper()
	cfg := c.ServiceAccount(tb, ns, "argolocal")
	c.Grant(tb, ns, ns, "argolocal", argolocalVerbs())
	return cfg
}

// gateAction is the build action of change n,ps of project in the gate
// pipeline, tested alone on branch master at the speculative commit.
func gateAction(project string, n, ps int, revision, commit string) pipeline.Action {
	spec := pipeline.Spec{Project: project, Branch: "master", Number: n, Patchset: ps,
		Ref: fmt.Sprintf("refs/changes/%02d/%d/%d", n%100, n, ps), Commit: revision}
	item := fmt.Sprintf("gate-%d", n)
	bs := item + ".1"
	return pipeline.Action{
		ID: "build/" + bs, Kind: pipeline.ActBuild, Pipeline: "gate", Queue: "integrated",
		Item: item, BuildSet: bs, Change: spec, Changes: []pipeline.Spec{spec},
		Commits:  []pipeline.ProjectCommit{{Project: project, Branch: "master", Commit: commit}},
		Priority: 200,
	}
}

// fakeSHA is a commit id for actions that never reach git.
func fakeSHA(n int) string { return strings.Repeat(fmt.Sprintf("%x", n%16), 40) }

// settle returns once every result the adapter emitted before the call has
// been collected. Results are delivered in the order they were emitted, and
// the submission of a project without seakeeper.yaml is answered with a
// config error at once, without Kubernetes: once that arrives, whatever
// came before it has too.
func (a *adapter) settle(tb testing.TB) {
	tb.Helper()
	a.flushes++
	act := gateAction("org/without-config", 100000+a.flushes, 1, fakeSHA(1), fakeSHA(2))
	a.submit(tb, act)
	a.res.wait(tb, act.BuildSet, "a config error", func(r pipeline.BuildResult) bool { return r.ConfigError != "" })
}

// noTerminal fails tb if the adapter delivered a terminal result for one
// of bss (call settle first).
func (a *adapter) noTerminal(tb testing.TB, bss ...string) {
	tb.Helper()
	for _, bs := range bss {
		for _, r := range a.res.of(bs) {
			if r.Phase.Terminal() {
				tb.Errorf("a result was delivered for %s, which was cancelled: %+v", bs, r)
			}
		}
	}
}
