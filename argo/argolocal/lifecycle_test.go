package argolocal

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

// sleeper is a Workflow whose step records the PIDs of its shell and of a
// background sleep in dir, then waits for the sleep. Its spec is extended
// by extra.
func sleeper(t *testing.T, name, dir, extra string) *wfv1.Workflow {
	return workflow(t, fmt.Sprintf(`
metadata: {name: %s}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: %q}]}
%s
  templates:
  - name: main
    steps: [[{name: sleep, template: sleep}], [{name: after, template: sleep}]]
  - name: sleep
    container:
      command: [sh, -c]
      args: ["sleep 30 & echo $! > {{workflow.parameters.dir}}/bg.pid; echo $$ > {{workflow.parameters.dir}}/main.pid; wait"]
`, name, dir, extra))
}

// pids waits for the PIDs a sleeper records and checks they are running.
func pids(t *testing.T, dir string) []int {
	t.Helper()
	var out []int
	for _, f := range []string{"bg.pid", "main.pid"} {
		pid, err := strconv.Atoi(waitFile(t, filepath.Join(dir, f)))
		if err != nil || !alive(pid) {
			t.Fatalf("%s: %v, alive %v", f, err, alive(pid))
		}
		out = append(out, pid)
	}
	return out
}

func TestActiveDeadlineKillsTheWorkflow(t *testing.T) {
	dir := t.TempDir()
	api := newFakeAPI(t, sleeper(t, "deadline", dir, "  activeDeadlineSeconds: 60"))
	clock := newFakeClock()
	start(t, api, Config{Clock: clock})
	running := pids(t, dir)
	clock.Advance(59 * time.Second)
	if wf := waitFor(t, api, "deadline", "Running", func(wf *wfv1.Workflow) bool { return wf.Status.Phase != "" }); wf.Status.Phase != wfv1.WorkflowRunning {
		t.Fatalf("phase %s before the deadline", wf.Status.Phase)
	}
	clock.Advance(2 * time.Second)
	wf := waitDone(t, api, "deadline")

	if wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "Step exceeded its deadline" {
		t.Fatalf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
	if n := node(t, wf, "sleep"); n.Phase != wfv1.NodeFailed || n.Message != "Step exceeded its deadline" {
		t.Errorf("node %+v", n)
	}
	if got := wf.Status.FinishedAt.Sub(wf.Status.StartedAt.Time); got != 61*time.Second {
		t.Errorf("ran for %v on the clock, want 61s", got)
	}
	for _, pid := range running {
		waitGone(t, pid)
	}
}

func TestTemplateDeadlineKillsTheStep(t *testing.T) {
	dir := t.TempDir()
	api := newFakeAPI(t, workflow(t, fmt.Sprintf(`
metadata: {name: slow-step}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: %q}]}
  templates:
  - name: main
    steps: [[{name: slow, template: slow, arguments: {parameters: [{name: limit, value: "5"}]}}]]
  - name: slow
    inputs: {parameters: [{name: limit}]}
    activeDeadlineSeconds: "{{inputs.parameters.limit}}"
    container: {command: [sh, -c, "echo $$ > {{workflow.parameters.dir}}/main.pid; exec sleep 30"]}
`, dir)))
	clock := newFakeClock()
	start(t, api, Config{Clock: clock})
	pid, _ := strconv.Atoi(waitFile(t, filepath.Join(dir, "main.pid")))
	clock.Advance(4 * time.Second)
	if !alive(pid) {
		t.Fatal("the step ended before its deadline")
	}
	clock.Advance(time.Second)
	wf := waitDone(t, api, "slow-step")
	if wf.Status.Phase != wfv1.WorkflowFailed || node(t, wf, "slow").Message != "Step exceeded its deadline" {
		t.Fatalf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
	waitGone(t, pid)
}

func TestShutdownTerminateKillsTheProcesses(t *testing.T) {
	dir := t.TempDir()
	api := newFakeAPI(t)
	start(t, api, Config{Clock: newFakeClock()})
	api.waitWatching(t)
	create(t, api, sleeper(t, "terminate", dir, ""))
	running := pids(t, dir)

	modify(t, api, "terminate", func(wf *wfv1.Workflow) { wf.Spec.Shutdown = wfv1.ShutdownStrategyTerminate })
	wf := waitDone(t, api, "terminate")
	if wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "Stopped with strategy 'Terminate'" {
		t.Fatalf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
	if wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Errorf("a status write lost spec.shutdown")
	}
	if n := node(t, wf, "sleep"); n.Phase != wfv1.NodeFailed || n.Message != "Stopped with strategy 'Terminate'" {
		t.Errorf("node %+v", n)
	}
	for _, n := range wf.Status.Nodes {
		if n.DisplayName == "after" {
			t.Error("a step ran after the shutdown")
		}
	}
	for _, pid := range running {
		waitGone(t, pid)
	}
}

func TestShutdownBeforeStartAndWhilePending(t *testing.T) {
	dir := t.TempDir()
	stopped := sleeper(t, "stopped", dir, "  shutdown: Stop")
	api := newFakeAPI(t, stopped, sleeper(t, "busy", dir, ""))
	start(t, api, Config{Clock: newFakeClock(), Parallel: 1})
	api.waitWatching(t)
	if wf := waitDone(t, api, "stopped"); wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "Stopped with strategy 'Stop'" {
		t.Errorf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
	pids(t, dir)
	create(t, api, sleeper(t, "queued", t.TempDir(), ""))
	wf := waitFor(t, api, "queued", "Pending", func(wf *wfv1.Workflow) bool { return wf.Status.Phase != "" })
	if wf.Status.Phase != wfv1.WorkflowPending || wf.Labels[labelPhase] != "Pending" || wf.Labels[labelCompleted] != "false" {
		t.Fatalf("with Parallel 1: phase %s labels %v", wf.Status.Phase, wf.Labels)
	}
	modify(t, api, "queued", func(wf *wfv1.Workflow) { wf.Spec.Shutdown = wfv1.ShutdownStrategyTerminate })
	if wf := waitDone(t, api, "queued"); wf.Status.Phase != wfv1.WorkflowFailed || len(wf.Status.Nodes) != 0 {
		t.Errorf("phase %s nodes %v", wf.Status.Phase, wf.Status.Nodes)
	}
	modify(t, api, "busy", func(wf *wfv1.Workflow) { wf.Spec.Shutdown = wfv1.ShutdownStrategyTerminate })
	waitDone(t, api, "busy")
}

func TestDeletingAWorkflowKillsItsProcesses(t *testing.T) {
	dir := t.TempDir()
	api := newFakeAPI(t)
	start(t, api, Config{Clock: newFakeClock()})
	api.waitWatching(t)
	create(t, api, sleeper(t, "deleted", dir, ""))
	running := pids(t, dir)
	if err := api.ArgoprojV1alpha1().Workflows(ns).Delete(context.Background(), "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, pid := range running {
		waitGone(t, pid)
	}
}

func TestRestartFailsWhatWasRunning(t *testing.T) {
	dir := t.TempDir()
	api := newFakeAPI(t, sleeper(t, "interrupted", dir, ""), workflow(t, `
metadata: {name: finished}
spec: {entrypoint: main, templates: [{name: main, container: {command: ["true"]}}]}
status: {phase: Succeeded, message: earlier}
`))
	_, stop := start(t, api, Config{Clock: newFakeClock()})
	running := pids(t, dir)
	waitFor(t, api, "interrupted", "a running node", func(wf *wfv1.Workflow) bool {
		for _, n := range wf.Status.Nodes {
			if n.DisplayName == "sleep" {
				return true
			}
		}
		return false
	})
	stop()
	for _, pid := range running {
		waitGone(t, pid)
	}
	wf := waitFor(t, api, "interrupted", "Running", func(wf *wfv1.Workflow) bool { return true })
	if wf.Status.Phase != wfv1.WorkflowRunning {
		t.Fatalf("phase %s after the controller stopped, want Running (it writes nothing then)", wf.Status.Phase)
	}

	api.Fake.ClearActions()
	start(t, api, Config{Clock: newFakeClock()})
	wf = waitDone(t, api, "interrupted")
	if wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "argolocal restarted" {
		t.Fatalf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
	if n := node(t, wf, "sleep"); n.Phase != wfv1.NodeFailed || n.Message != "argolocal restarted" || n.FinishedAt.IsZero() {
		t.Errorf("node %+v", n)
	}
	if wf.Labels[labelCompleted] != "true" {
		t.Errorf("labels %v", wf.Labels)
	}
	for _, a := range api.Actions() {
		if u, ok := a.(k8stesting.UpdateAction); ok && u.GetObject().(*wfv1.Workflow).Name == "finished" {
			t.Error("the restarted controller wrote a finished workflow")
		}
	}
}

func TestStatusWriteRetriesConflicts(t *testing.T) {
	api := newFakeAPI(t, workflow(t, `
metadata: {name: contended}
spec: {entrypoint: main, templates: [{name: main, container: {command: ["true"]}}]}
`))
	conflicts := 0
	api.PrependReactor("update", "workflows", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts < 3 {
			conflicts++
			return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), "contended", errors.New("try again"))
		}
		return false, nil, nil
	})
	start(t, api, Config{Clock: newFakeClock()})
	if wf := waitDone(t, api, "contended"); wf.Status.Phase != wfv1.WorkflowSucceeded {
		t.Fatalf("phase %s", wf.Status.Phase)
	}
}

// TestCloneFromAGitEndpoint runs what a Seakeeper workflow does: clone the
// speculative state from the git URL it is given, check out the commit,
// and run the project's tests.
func TestCloneFromAGitEndpoint(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	tmp := t.TempDir()
	gitRun := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+tmp)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	work := filepath.Join(tmp, "work")
	gitRun(tmp, "init", "-q", "-b", "main", work)
	writeFile(t, filepath.Join(work, "test.sh"), "test \"$(cat version)\" = 2\n")
	writeFile(t, filepath.Join(work, "version"), "2\n")
	gitRun(work, "add", ".")
	gitRun(work, "commit", "-q", "-m", "change under test")
	commit := gitRun(work, "rev-parse", "HEAD")
	writeFile(t, filepath.Join(work, "version"), "3\n")
	gitRun(work, "commit", "-q", "-am", "a later change")
	bare := filepath.Join(tmp, "project.git")
	gitRun(tmp, "clone", "-q", "--bare", work, bare)

	api := newFakeAPI(t, workflow(t, fmt.Sprintf(`
metadata: {name: gate-item, labels: {seakeeper.io/buildset: bs}}
spec:
  entrypoint: test
  arguments:
    parameters:
    - {name: seakeeper-git-url, value: %q}
    - {name: seakeeper-commit, value: %q}
  templates:
  - name: test
    script:
      image: alpine/git
      command: [sh]
      workingDir: /src
      source: |
        set -e
        git clone -q {{workflow.parameters.seakeeper-git-url}} project
        cd project
        git checkout -q {{workflow.parameters.seakeeper-commit}}
        sh ./test.sh
        git rev-parse HEAD
`, "file://"+bare, commit)))
	start(t, api, Config{Clock: newFakeClock(), LabelSelector: "seakeeper.io/buildset", Env: []string{"GIT_CONFIG_NOSYSTEM=1"}})
	wf := waitDone(t, api, "gate-item")
	log := readFile(t, filepath.Join(wf.Annotations[AnnotationWorkDir], "gate-item.log"))
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		t.Fatalf("phase %s message %q, log:\n%s", wf.Status.Phase, wf.Status.Message, log)
	}
	if strings.TrimSpace(log) != commit {
		t.Errorf("log %q, want the commit %s", log, commit)
	}
}

func TestLabelSelectorAndNamespaceLimitWhatRuns(t *testing.T) {
	other := workflow(t, `
metadata: {name: other-ns, labels: {seakeeper.io/buildset: x}}
spec: {entrypoint: main, templates: [{name: main, container: {command: ["true"]}}]}
`)
	other.Namespace = "elsewhere"
	api := newFakeAPI(t, other, workflow(t, `
metadata: {name: unlabelled}
spec: {entrypoint: main, templates: [{name: main, container: {command: ["true"]}}]}
`), workflow(t, `
metadata: {name: labelled, labels: {seakeeper.io/buildset: x}}
spec: {entrypoint: main, templates: [{name: main, container: {command: ["true"]}}]}
`))
	_, stop := start(t, api, Config{Clock: newFakeClock(), Namespace: ns, LabelSelector: "seakeeper.io/buildset"})
	waitDone(t, api, "labelled")
	stop()
	for _, key := range [][2]string{{ns, "unlabelled"}, {"elsewhere", "other-ns"}} {
		wf, err := api.ArgoprojV1alpha1().Workflows(key[0]).Get(context.Background(), key[1], metav1.GetOptions{})
		if err != nil || wf.Status.Phase != "" {
			t.Errorf("%s/%s: %v, phase %q; want it untouched", key[0], key[1], err, wf.Status.Phase)
		}
	}
}

func TestUnsupportedFeatureIsAnError(t *testing.T) {
	api := newFakeAPI(t, workflow(t, `
metadata: {name: loop}
spec:
  entrypoint: main
  templates:
  - name: main
    steps: [[{name: each, template: ok, withItems: [1, 2]}]]
  - {name: ok, container: {command: ["true"]}}
`))
	start(t, api, Config{Clock: newFakeClock()})
	wf := waitDone(t, api, "loop")
	if wf.Status.Phase != wfv1.WorkflowError || wf.Status.Message != "argolocal does not support withItems" {
		t.Fatalf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
}
