package argo_test

// The real Kubernetes API tier of the adapter (DESIGN §6, tier 2): a real
// kube-apiserver and etcd with Argo's minimal CRDs (internal/kubetest), the
// adapter authenticated as a ServiceAccount holding only the verbs it
// needs in the project namespace, and argolocal, with a ServiceAccount of
// its own, running the Workflows on this machine.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/argo/argolocal"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/merger"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// gateConfig is a project's seakeeper.yaml whose gate workflow clones the
// speculative state from the merger's git endpoint and runs the project's
// test.sh there.
const gateConfig = `timeout: 10m
parameters:
  suite: smoke
pipelines:
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
                git clone {{workflow.parameters.seakeeper-git-url}} src && cd src && git fetch origin {{workflow.parameters.seakeeper-ref}} && git checkout FETCH_HEAD && sh test.sh
`

// testScript is the project's test.sh: it passes only in a checkout of
// the speculative state (the change on top of the moved branch).
const testScript = `set -e
test -f feature.txt || { echo "feature.txt is missing: this is not the change under test" >&2; exit 1; }
test -f moved.txt || { echo "moved.txt is missing: this is not on the branch tip" >&2; exit 1; }
echo "HEAD $(git rev-parse HEAD)"
git log --oneline
`

// TestKubeGateItemEndToEnd is issue 5's "done when": the Workflow of a gate
// item, fetched back from the real API server, carries every label and
// parameter of the contract, and argolocal runs it to Succeeded from the
// merger's git endpoint; the adapter delivers the verdict with the link to
// the Argo UI.
func TestKubeGateItemEndToEnd(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	project, ns := newProject(c, "app")
	adapterCfg := c.ProjectNamespace(t, ns, adapterVerbs())
	admin := wfClient(t, c.AdminConfig())

	// Gerrit: test.sh on master, a change adding feature.txt on that tip,
	// then master moves on, so that the speculative state is a merge
	// commit that exists only in the merger's mirror.
	srv, err := gerrittest.New(gerrittest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.CreateProject(project, gerrittest.MergeIfNecessary); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PushToBranch(project, "master", map[string]string{"test.sh": testScript}, "Add test.sh\n", ""); err != nil {
		t.Fatal(err)
	}
	ch, err := srv.CreateChange(gerrittest.ChangeSpec{Project: project, Subject: "Add the feature",
		Files: map[string]string{"feature.txt": "feature\n"}})
	if err != nil {
		t.Fatal(err)
	}
	tip, err := srv.PushToBranch(project, "master", map[string]string{"moved.txt": "moved\n"}, "Move master on\n", "")
	if err != nil {
		t.Fatal(err)
	}
	ps := ch.Current()

	// The merger fetches from Gerrit's authenticated git endpoint and
	// serves its mirrors as the daemon's internal git endpoint.
	pw := filepath.Join(t.TempDir(), "http-password")
	if err := os.WriteFile(pw, []byte(srv.Password()), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := merger.New(merger.Config{
		Dir:          t.TempDir(),
		Source:       func(p string) string { return srv.URL() + "/a/" + p },
		User:         srv.User(),
		PasswordFile: pw,
	})
	if err != nil {
		t.Fatal(err)
	}
	gitSrv := httptest.NewServer(m.Handler())
	t.Cleanup(gitSrv.Close)

	act := gateAction(project, ch.Number, ps.Number, ps.Revision, "")
	act.Change.Ref = ps.Ref
	act.Changes = []pipeline.Spec{act.Change}
	mr := m.Prepare(context.Background(), act.BuildSet, act.Changes, "")
	if mr.Error != "" || mr.Conflict != nil || len(mr.Commits) != 1 {
		t.Fatalf("Prepare: %+v", mr)
	}
	commit := mr.Commits[0].Commit
	if commit == ps.Revision || commit == tip {
		t.Fatalf("speculative commit %s is the change (%s) or the tip (%s), not a merge", commit, ps.Revision, tip)
	}
	act.Commits = mr.Commits

	workDir := startArgolocal(t, argolocalIn(t, c, ns), ns)
	a := startAdapter(t, adapterCfg, configs{project: gateConfig}, func(o *argo.Options) {
		o.Render.InternalURL = gitSrv.URL + "/"
		o.Namespaces = []string{ns}
	})
	a.submit(t, act)

	// The Workflow as the API server holds it.
	name := argo.WorkflowName(act)
	wf := getWorkflow(t, admin, ns, name)
	if wf == nil {
		t.Fatalf("workflow %s/%s was not created", ns, name)
	}
	if len(wf.Name) > 63 || !strings.HasPrefix(wf.Name, fmt.Sprintf("sk-gate-%d-%d-", ch.Number, ps.Number)) {
		t.Errorf("name %q", wf.Name)
	}
	raw := map[string]string{
		argo.LabelPipeline: "gate",
		argo.LabelProject:  project,
		argo.LabelChange:   strconv.Itoa(ch.Number),
		argo.LabelPatchset: strconv.Itoa(ps.Number),
		argo.LabelItem:     act.Item,
		argo.LabelBuildSet: act.BuildSet,
	}
	for k, v := range raw {
		if got := wf.Labels[k]; got != argo.LabelValue(v) {
			t.Errorf("label %s = %q, want %q", k, got, argo.LabelValue(v))
		}
		if got := wf.Annotations[k]; got != v {
			t.Errorf("annotation %s = %q, want %q", k, got, v)
		}
	}
	if wf.Labels[argo.LabelProject] == project {
		t.Errorf("project label %q was not made a label value", project)
	}
	// The labels select it on the server.
	sel := fmt.Sprintf("%s=%s,%s=%s", argo.LabelBuildSet, wf.Labels[argo.LabelBuildSet], argo.LabelProject, wf.Labels[argo.LabelProject])
	list, err := admin.ArgoprojV1alpha1().Workflows(ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != name {
		t.Errorf("list by %s: %v, %d workflows", sel, err, len(list.Items))
	}

	gitURL := gitSrv.URL + "/git/" + project
	ref := "refs/seakeeper/" + act.BuildSet
	wantParams := map[string]string{
		"seakeeper-project":  project,
		"seakeeper-branch":   "master",
		"seakeeper-change":   strconv.Itoa(ch.Number),
		"seakeeper-patchset": strconv.Itoa(ps.Number),
		"seakeeper-pipeline": "gate",
		"seakeeper-git-url":  gitURL,
		"seakeeper-ref":      ref,
		"seakeeper-commit":   commit,
		"suite":              "smoke",
	}
	params := map[string]string{}
	for _, p := range wf.Spec.Arguments.Parameters {
		if _, dup := params[p.Name]; dup {
			t.Errorf("parameter %s given twice", p.Name)
		}
		if p.Value == nil {
			t.Errorf("parameter %s has no value", p.Name)
			continue
		}
		params[p.Name] = p.Value.String()
	}
	for k, v := range wantParams {
		if params[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, params[k], v)
		}
	}
	var changes []argo.ChangeParam
	if err := json.Unmarshal([]byte(params["seakeeper-changes"]), &changes); err != nil {
		t.Errorf("seakeeper-changes %q: %v", params["seakeeper-changes"], err)
	}
	wantChanges := []argo.ChangeParam{{Project: project, Branch: "master", Change: ch.Number, Patchset: ps.Number,
		Ref: ps.Ref, Revision: ps.Revision, GitURL: gitURL, SeakeeperRef: ref, Commit: commit}}
	if !reflect.DeepEqual(changes, wantChanges) {
		t.Errorf("seakeeper-changes = %+v, want %+v", changes, wantChanges)
	}
	if len(params) != len(wantParams)+1 {
		t.Errorf("parameters %v, want those of %v and seakeeper-changes", params, wantParams)
	}

	s := wf.Spec
	switch {
	case s.Priority == nil || *s.Priority != act.Priority:
		t.Errorf("priority %v, want %d", s.Priority, act.Priority)
	case s.TTLStrategy == nil || s.TTLStrategy.SecondsAfterCompletion == nil || *s.TTLStrategy.SecondsAfterCompletion != 7200:
		t.Errorf("ttlStrategy %+v, want secondsAfterCompletion 7200", s.TTLStrategy)
	case s.PodGC == nil || s.PodGC.Strategy != argo.DefaultPodGCStrategy:
		t.Errorf("podGC %+v, want %s", s.PodGC, argo.DefaultPodGCStrategy)
	case s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds != 600:
		t.Errorf("activeDeadlineSeconds %v, want 600 (timeout: 10m)", s.ActiveDeadlineSeconds)
	case s.Shutdown != "" || s.ServiceAccountName != "" || s.Entrypoint != "test" || len(s.Templates) != 1:
		t.Errorf("spec %+v", s)
	}

	// argolocal runs it; the adapter reports it.
	r := a.res.final(t, act.BuildSet)
	done := getWorkflow(t, admin, ns, name)
	pod := podNode(done)
	log := nodeLog(t, done, pod.ID)
	if r.Phase != pipeline.PhaseSucceeded || done.Status.Phase != wfv1.WorkflowSucceeded {
		t.Fatalf("result %+v, workflow %s %q; the test's log:\n%s", r, done.Status.Phase, done.Status.Message, log)
	}
	if !strings.Contains(log, "HEAD "+commit+"\n") || !strings.Contains(log, "Add the feature") {
		t.Errorf("the test did not run on the speculative commit %s; its log:\n%s", commit, log)
	}
	if !strings.HasPrefix(done.Annotations[argolocal.AnnotationWorkDir], workDir) {
		t.Errorf("work directory %q is not argolocal's", done.Annotations[argolocal.AnnotationWorkDir])
	}
	wantURL := fmt.Sprintf("%s/workflows/%s/%s?uid=%s", kubeArgoURL, ns, name, done.UID)
	if r.URL != wantURL || done.UID != wf.UID {
		t.Errorf("URL %q, want %q", r.URL, wantURL)
	}
	if r.StartedAt.IsZero() || !r.StartedAt.Equal(done.Status.StartedAt.Time) || !r.FinishedAt.Equal(done.Status.FinishedAt.Time) ||
		r.FinishedAt.Before(r.StartedAt) || r.Message != "" || len(r.Nodes) != 0 || r.ConfigError != "" {
		t.Errorf("result %+v, status %+v", r, done.Status)
	}
	checkProgress(t, a.res.of(act.BuildSet))
}

// podNode returns the (first) Pod node of a finished Workflow.
func podNode(wf *wfv1.Workflow) wfv1.NodeStatus {
	for _, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePod {
			return n
		}
	}
	return wfv1.NodeStatus{}
}

// nodeLog returns what a node argolocal ran printed.
func nodeLog(t *testing.T, wf *wfv1.Workflow, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wf.Annotations[argolocal.AnnotationWorkDir], id+".log"))
	if err != nil {
		t.Errorf("log of node %q: %v", id, err)
	}
	return string(b)
}

// checkProgress checks that a buildset's results move forward: phases in
// the order Pending, Running, then one terminal result, last.
func checkProgress(t *testing.T, rs []pipeline.BuildResult) {
	t.Helper()
	rank := map[pipeline.Phase]int{pipeline.PhasePending: 0, pipeline.PhaseRunning: 1}
	last := -1
	for i, r := range rs {
		k, ok := rank[r.Phase]
		if !ok {
			k = 2
		}
		if k < last || k == 2 && i != len(rs)-1 {
			t.Errorf("results out of order: %+v", rs)
			return
		}
		last = k
	}
}

// failingConfig has a step group in which unit-tests fails.
const failingConfig = `workflow:
  spec:
    entrypoint: main
    templates:
      - name: main
        steps:
          - - {name: build, template: ok}
          - - {name: unit-tests, template: unit}
            - {name: lint, template: ok}
      - name: ok
        container: {image: alpine, command: [sh, -c, "echo fine"]}
      - name: unit
        script:
          image: alpine
          command: [sh]
          source: |
            echo "--- FAIL: TestWidget" >&2
            exit 3
`

// TestKubeFailingWorkflow: a workflow that fails gives a Failed result
// carrying status.message and naming the failing node, with its link.
func TestKubeFailingWorkflow(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	project, ns := newProject(c, "failing")
	adapterCfg := c.ProjectNamespace(t, ns, adapterVerbs())
	admin := wfClient(t, c.AdminConfig())
	startArgolocal(t, argolocalIn(t, c, ns), ns)
	a := startAdapter(t, adapterCfg, configs{project: failingConfig}, func(o *argo.Options) { o.Namespaces = []string{ns} })

	act := gateAction(project, 7, 2, fakeSHA(7), fakeSHA(8))
	a.submit(t, act)
	r := a.res.final(t, act.BuildSet)
	wf := getWorkflow(t, admin, ns, argo.WorkflowName(act))
	if r.Phase != pipeline.PhaseFailed || wf.Status.Phase != wfv1.WorkflowFailed {
		t.Fatalf("result %+v, workflow %s", r, wf.Status.Phase)
	}
	if r.Message == "" || r.Message != wf.Status.Message || !strings.Contains(r.Message, "exit code 3") {
		t.Errorf("message %q, status.message %q", r.Message, wf.Status.Message)
	}
	var failed wfv1.NodeStatus
	for _, n := range wf.Status.Nodes {
		if n.DisplayName == "unit-tests" {
			failed = n
		}
	}
	want := []pipeline.NodeResult{{Name: "unit-tests", Phase: pipeline.PhaseFailed, Message: "exit code 3",
		URL: fmt.Sprintf("%s/workflows/%s/%s?uid=%s&nodeId=%s", kubeArgoURL, ns, wf.Name, wf.UID, failed.ID)}}
	if failed.ID == "" || !reflect.DeepEqual(r.Nodes, want) {
		t.Errorf("nodes %+v, want %+v", r.Nodes, want)
	}
	if log := nodeLog(t, wf, failed.ID); !strings.Contains(log, "--- FAIL: TestWidget") {
		t.Errorf("log of unit-tests: %q", log)
	}
	checkProgress(t, a.res.of(act.BuildSet))
}

// sleepConfig runs for a minute unless stopped.
const sleepConfig = `workflow:
  spec:
    entrypoint: main
    templates:
      - name: main
        container: {image: alpine, command: [sh, -c, "sleep 60"]}
`

// TestKubeCancelTerminates: Cancel sends the real merge patch
// spec.shutdown=Terminate, argolocal stops the workflow, and the adapter
// lets go of it without a result.
func TestKubeCancelTerminates(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	project, ns := newProject(c, "cancel")
	adapterCfg := c.ProjectNamespace(t, ns, adapterVerbs())
	admin := wfClient(t, c.AdminConfig())
	startArgolocal(t, argolocalIn(t, c, ns), ns)
	a := startAdapter(t, adapterCfg, configs{project: sleepConfig}, func(o *argo.Options) {
		o.Namespaces = []string{ns}
		o.CancelGrace = 10 * time.Minute // argolocal stops it: the backstop must not be needed
	})

	act := gateAction(project, 11, 1, fakeSHA(1), fakeSHA(2))
	a.submit(t, act)
	a.res.phase(t, act.BuildSet, pipeline.PhaseRunning)
	name := argo.WorkflowName(act)
	waitWorkflow(t, admin, ns, name, "running its pod", func(wf *wfv1.Workflow) bool {
		return podNode(wf).Phase == wfv1.NodeRunning
	})

	if err := a.Cancel(context.Background(), act.BuildSet); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if wf := getWorkflow(t, admin, ns, name); wf == nil || wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Fatalf("after Cancel returned: %+v", wf)
	}
	wf := waitWorkflow(t, admin, ns, name, "completed", func(wf *wfv1.Workflow) bool { return wf.Status.Phase.Completed() })
	if wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "Stopped with strategy 'Terminate'" {
		t.Errorf("status %s %q", wf.Status.Phase, wf.Status.Message)
	}
	if n := podNode(wf); n.Phase != wfv1.NodeFailed {
		t.Errorf("pod node %+v", n)
	}
	eventually(t, "the adapter to free the slot", func() bool { return a.Stats().Running == 0 },
		func() string { return fmt.Sprintf("%+v", a.Stats()) })
	a.settle(t)
	a.noTerminal(t, act.BuildSet)
	if getWorkflow(t, admin, ns, name) == nil {
		t.Error("the workflow was deleted although it stopped")
	}
	// Submitting a cancelled buildset again (an outbox replayed late)
	// does nothing.
	a.submit(t, act)
	if wf2 := getWorkflow(t, admin, ns, name); wf2 == nil || wf2.UID != wf.UID || wf2.Status.Phase != wfv1.WorkflowFailed {
		t.Errorf("after a late Submit: %+v", wf2)
	}
}

// TestKubeCancelBackstopDeletes: a cancelled workflow that nothing stops
// (no controller watches it) is deleted once CancelGrace has passed.
func TestKubeCancelBackstopDeletes(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	project, ns := newProject(c, "backstop")
	adapterCfg := c.ProjectNamespace(t, ns, adapterVerbs())
	admin := wfClient(t, c.AdminConfig())
	a := startAdapter(t, adapterCfg, configs{project: sleepConfig}, func(o *argo.Options) {
		o.Namespaces = []string{ns}
		o.CancelGrace = 300 * time.Millisecond
	})

	act := gateAction(project, 12, 1, fakeSHA(1), fakeSHA(2))
	a.submit(t, act)
	a.res.phase(t, act.BuildSet, pipeline.PhasePending)
	name := argo.WorkflowName(act)
	if err := a.Cancel(context.Background(), act.BuildSet); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	wf := getWorkflow(t, admin, ns, name)
	if wf != nil && wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Fatalf("after Cancel returned: spec.shutdown %q", wf.Spec.Shutdown)
	}
	eventually(t, "the backstop to delete the workflow", func() bool { return getWorkflow(t, admin, ns, name) == nil }, nil)
	eventually(t, "the adapter to free the slot", func() bool { return a.Stats().Running == 0 },
		func() string { return fmt.Sprintf("%+v", a.Stats()) })
	a.settle(t)
	a.noTerminal(t, act.BuildSet)
}

// holdConfig runs until the file named by parameter release exists.
func holdConfig(release string) string {
	return fmt.Sprintf(`parameters: {release: %q}
workflow:
  spec:
    entrypoint: main
    templates:
      - name: main
        container:
          image: alpine
          command: [sh, -c, "while [ ! -e '{{workflow.parameters.release}}' ]; do sleep 0.05; done"]
`, release)
}

// TestKubeAdoptAfterRestart: an adapter that restarts adopts the workflows
// the scheduler still wants (one through Adopt, one through a replayed
// Submit that meets AlreadyExists) and delivers their results, and cancels
// the orphan.
func TestKubeAdoptAfterRestart(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	project, ns := newProject(c, "adopt")
	adapterCfg := c.ProjectNamespace(t, ns, adapterVerbs())
	admin := wfClient(t, c.AdminConfig())
	startArgolocal(t, argolocalIn(t, c, ns), ns)
	release := filepath.Join(t.TempDir(), "release")
	src := configs{project: holdConfig(release)}
	namespaced := func(o *argo.Options) { o.Namespaces = []string{ns} }

	wanted := gateAction(project, 21, 1, fakeSHA(1), fakeSHA(2))
	replayed := gateAction(project, 22, 1, fakeSHA(3), fakeSHA(4))
	orphan := gateAction(project, 23, 1, fakeSHA(5), fakeSHA(6))
	first := startAdapter(t, adapterCfg, src, namespaced)
	for _, act := range []pipeline.Action{wanted, replayed, orphan} {
		first.submit(t, act)
		first.res.phase(t, act.BuildSet, pipeline.PhaseRunning)
	}
	uids := map[string]string{}
	for _, act := range []pipeline.Action{wanted, replayed, orphan} {
		uids[act.BuildSet] = string(getWorkflow(t, admin, ns, argo.WorkflowName(act)).UID)
	}
	first.Shutdown()

	second := startAdapter(t, adapterCfg, src, namespaced)
	second.submit(t, replayed) // the outbox replayed: AlreadyExists, same labels ⇒ adopted
	second.res.phase(t, replayed.BuildSet, pipeline.PhaseRunning)
	got, err := second.Adopt(context.Background(), map[string]bool{
		wanted.BuildSet: true, replayed.BuildSet: true, "gate-99.1": true,
	})
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	want := argo.AdoptResult{Adopted: []string{wanted.BuildSet}, Cancelled: []string{orphan.BuildSet}, Missing: []string{"gate-99.1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Adopt = %+v, want %+v", got, want)
	}
	second.res.phase(t, wanted.BuildSet, pipeline.PhaseRunning)

	wf := waitWorkflow(t, admin, ns, argo.WorkflowName(orphan), "completed", func(wf *wfv1.Workflow) bool { return wf.Status.Phase.Completed() })
	if wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate || wf.Status.Phase != wfv1.WorkflowFailed ||
		wf.Status.Message != "Stopped with strategy 'Terminate'" {
		t.Errorf("orphan: shutdown %q, status %s %q", wf.Spec.Shutdown, wf.Status.Phase, wf.Status.Message)
	}

	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, act := range []pipeline.Action{wanted, replayed} {
		r := second.res.final(t, act.BuildSet)
		wantURL := fmt.Sprintf("%s/workflows/%s/%s?uid=%s", kubeArgoURL, ns, argo.WorkflowName(act), uids[act.BuildSet])
		if r.Phase != pipeline.PhaseSucceeded || r.URL != wantURL {
			t.Errorf("%s: result %+v, want Succeeded at %s", act.BuildSet, r, wantURL)
		}
		checkProgress(t, second.res.of(act.BuildSet))
	}
	eventually(t, "the adapter to free the slots", func() bool { return second.Stats().Running == 0 },
		func() string { return fmt.Sprintf("%+v", second.Stats()) })
	second.settle(t)
	second.noTerminal(t, orphan.BuildSet)
	first.noTerminal(t, wanted.BuildSet, replayed.BuildSet, orphan.BuildSet)

	list, err := admin.ArgoprojV1alpha1().Workflows(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 3 {
		t.Errorf("workflows in %s: %v, %d", ns, err, len(list.Items))
	}
}

// echoConfig succeeds at once.
const echoConfig = `workflow:
  spec:
    entrypoint: main
    templates:
      - name: main
        container: {image: alpine, command: [sh, -c, "echo ok"]}
`

// TestKubeNamespaceAutoCreation: with a NamespaceClient, the adapter
// creates a project's namespace, labelled, before its first Workflow. It
// needs only "create" on namespaces (an existing one answers
// AlreadyExists), and cluster-wide workflow verbs, since a Role cannot be
// bound in a namespace that does not exist yet.
func TestKubeNamespaceAutoCreation(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	project, ns := newProject(c, "auto")
	system := c.UniqueName("seakeeper-system")
	adapterCfg := c.ServiceAccount(t, system, "seakeeper")
	verbs := adapterVerbs()
	verbs["namespaces"] = []string{"create"}
	c.Grant(t, "", system, "seakeeper", verbs)
	localCfg := c.ServiceAccount(t, system, "argolocal")
	c.Grant(t, "", system, "argolocal", map[string][]string{"workflows": argolocalVerbs()["workflows"]})
	startArgolocal(t, localCfg, ns)

	kube := c.AdminClient()
	if _, err := kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s before the first workflow: %v", ns, err)
	}
	nsClient := func(tb testing.TB) func(*argo.Options) {
		cs, err := kubernetes.NewForConfig(adapterCfg)
		if err != nil {
			tb.Fatal(err)
		}
		return func(o *argo.Options) { o.NamespaceClient = cs.CoreV1().Namespaces() }
	}
	src := configs{project: echoConfig}
	a := startAdapter(t, adapterCfg, src, nsClient(t))
	act := gateAction(project, 31, 1, fakeSHA(1), fakeSHA(2))
	a.submit(t, act)
	if r := a.res.final(t, act.BuildSet); r.Phase != pipeline.PhaseSucceeded {
		t.Fatalf("result %+v", r)
	}
	got, err := kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[argo.LabelManaged] != "true" || got.Labels[argo.LabelProject] != argo.LabelValue(project) ||
		got.Annotations[argo.LabelProject] != project {
		t.Errorf("namespace labels %v, annotations %v", got.Labels, got.Annotations)
	}

	// After a restart the namespace exists: the adapter goes on.
	a.Shutdown()
	b := startAdapter(t, adapterCfg, src, nsClient(t))
	act2 := gateAction(project, 32, 1, fakeSHA(3), fakeSHA(4))
	b.submit(t, act2)
	if r := b.res.final(t, act2.BuildSet); r.Phase != pipeline.PhaseSucceeded {
		t.Fatalf("after a restart: result %+v", r)
	}
}

// TestKubeCancelWithoutPatchRBAC: a ServiceAccount lacking "patch" makes
// Cancel return a clear Forbidden error; the adapter does not crash, the
// backstop still deletes the workflow, and the adapter goes on working.
func TestKubeCancelWithoutPatchRBAC(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	project, ns := newProject(c, "nopatch")
	verbs := adapterVerbs()
	verbs["workflows"] = slices.DeleteFunc(verbs["workflows"], func(v string) bool { return v == "patch" })
	adapterCfg := c.ProjectNamespace(t, ns, verbs)
	admin := wfClient(t, c.AdminConfig())
	a := startAdapter(t, adapterCfg, configs{project: sleepConfig}, func(o *argo.Options) {
		o.Namespaces = []string{ns}
		o.CancelGrace = 300 * time.Millisecond
	})

	act := gateAction(project, 41, 1, fakeSHA(1), fakeSHA(2))
	a.submit(t, act)
	a.res.phase(t, act.BuildSet, pipeline.PhasePending)
	name := argo.WorkflowName(act)
	err := a.Cancel(context.Background(), act.BuildSet)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `cannot patch resource "workflows"`) ||
		!strings.Contains(err.Error(), name) {
		t.Fatalf("Cancel: %v; want Forbidden naming the workflow and the verb", err)
	}
	t.Logf("Cancel: %v", err)
	if wf := getWorkflow(t, admin, ns, name); wf != nil && wf.Spec.Shutdown != "" {
		t.Errorf("spec.shutdown %q although patch is forbidden", wf.Spec.Shutdown)
	}
	eventually(t, "the backstop to delete the workflow", func() bool { return getWorkflow(t, admin, ns, name) == nil }, nil)
	eventually(t, "the adapter to free the slot", func() bool { return a.Stats().Running == 0 },
		func() string { return fmt.Sprintf("%+v", a.Stats()) })

	act2 := gateAction(project, 42, 1, fakeSHA(3), fakeSHA(4))
	a.submit(t, act2)
	a.res.phase(t, act2.BuildSet, pipeline.PhasePending)
	a.settle(t)
	a.noTerminal(t, act.BuildSet)
}

// TestKubeForbiddenNamespaces: a namespace where the ServiceAccount may do
// nothing, or may watch but not create, gives a build result saying RBAC
// refused, not a crash or a retry for ever.
func TestKubeForbiddenNamespaces(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	_, home := newProject(c, "home")
	adapterCfg := c.ProjectNamespace(t, home, adapterVerbs())
	closed, closedNS := newProject(c, "closed")
	c.CreateNamespace(t, closedNS)
	nowatch, nowatchNS := newProject(c, "nowatch")
	c.CreateNamespace(t, nowatchNS)
	c.Grant(t, nowatchNS, home, "seakeeper", map[string][]string{"workflows": {"create", "get", "list", "patch", "delete"}})
	readonly, readonlyNS := newProject(c, "readonly")
	c.CreateNamespace(t, readonlyNS)
	c.Grant(t, readonlyNS, home, "seakeeper", map[string][]string{"workflows": {"get", "list", "watch"}})
	a := startAdapter(t, adapterCfg, configs{closed: echoConfig, readonly: echoConfig, nowatch: echoConfig}, func(o *argo.Options) {
		o.Namespaces = []string{home}
	})

	for i, tc := range []struct {
		project, verb string
	}{{closed, "list"}, {readonly, "create"}, {nowatch, "watch"}} {
		act := gateAction(tc.project, 51+i, 1, fakeSHA(1), fakeSHA(2))
		a.submit(t, act)
		r := a.res.final(t, act.BuildSet)
		want := fmt.Sprintf(`cannot %s resource "workflows"`, tc.verb)
		if r.Phase != pipeline.PhaseError || !strings.Contains(r.Message, "RBAC or quota") || !strings.Contains(r.Message, want) {
			t.Errorf("%s: result %+v, want an Error saying %q", tc.project, r, want)
		}
	}
	if s := a.Stats(); s.Running != 0 || s.Waiting != 0 {
		t.Errorf("stats %+v", s)
	}
}
