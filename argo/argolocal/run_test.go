package argolocal

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestContainerWorkflowSucceeds(t *testing.T) {
	api := newFakeAPI(t, workflow(t, `
metadata: {name: hello, labels: {seakeeper.io/buildset: bs1}}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [sh, -c], args: ["echo ok; echo err >&2"]}
`))
	clock := newFakeClock()
	start(t, api, Config{Clock: clock, LabelSelector: "seakeeper.io/buildset"})
	wf := waitDone(t, api, "hello")

	if wf.Status.Phase != wfv1.WorkflowSucceeded || wf.Status.Message != "" {
		t.Fatalf("phase %q message %q, want Succeeded and no message", wf.Status.Phase, wf.Status.Message)
	}
	if !wf.Status.StartedAt.Time.Equal(clock.Now()) || !wf.Status.FinishedAt.Time.Equal(clock.Now()) {
		t.Errorf("startedAt %v finishedAt %v, want the clock's %v", wf.Status.StartedAt, wf.Status.FinishedAt, clock.Now())
	}
	if got := wf.Labels; got[labelPhase] != "Succeeded" || got[labelCompleted] != "true" || got["seakeeper.io/buildset"] != "bs1" {
		t.Errorf("labels %v", got)
	}
	if wf.Status.Progress != "1/1" {
		t.Errorf("progress %q, want 1/1", wf.Status.Progress)
	}
	root, ok := wf.Status.Nodes["hello"]
	if !ok || len(wf.Status.Nodes) != 1 {
		t.Fatalf("nodes %v, want one keyed by the workflow name", wf.Status.Nodes)
	}
	if root.Name != "hello" || root.DisplayName != "hello" || root.Type != wfv1.NodeTypePod ||
		root.Phase != wfv1.NodeSucceeded || root.TemplateName != "main" || root.StartedAt.IsZero() || root.FinishedAt.IsZero() {
		t.Errorf("root node %+v", root)
	}
	if log, err := os.ReadFile(NodeLog(wf, root.ID)); err != nil || string(log) != "ok\nerr\n" {
		t.Errorf("log %q, %v; want stdout and stderr", log, err)
	}
}

func TestFailingStepFailsTheWorkflow(t *testing.T) {
	api := newFakeAPI(t, workflow(t, `
metadata: {name: failing}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - [{name: build, template: ok}]
    - [{name: test, template: fail}, {name: lint, template: ok}]
    - [{name: deploy, template: ok}]
  - {name: ok, container: {command: ["true"]}}
  - {name: fail, container: {command: [sh, -c, "exit 3"]}}
`))
	start(t, api, Config{Clock: newFakeClock()})
	wf := waitDone(t, api, "failing")

	if wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "exit code 3" {
		t.Fatalf("phase %q message %q, want Failed with exit code 3", wf.Status.Phase, wf.Status.Message)
	}
	if wf.Labels[labelPhase] != "Failed" || wf.Labels[labelCompleted] != "true" {
		t.Errorf("labels %v", wf.Labels)
	}
	test := node(t, wf, "test")
	if test.Phase != wfv1.NodeFailed || test.Message != "exit code 3" || test.Name != "failing[1].test" ||
		test.ID != wf.Name+"-"+strings.TrimPrefix(test.ID, wf.Name+"-") || test.BoundaryID != "failing" {
		t.Errorf("test node %+v", test)
	}
	if n := node(t, wf, "lint"); n.Phase != wfv1.NodeSucceeded {
		t.Errorf("lint, in parallel with test, ended %s", n.Phase)
	}
	if g := node(t, wf, "[1]"); g.Type != wfv1.NodeTypeStepGroup || g.Phase != wfv1.NodeFailed || len(g.Children) != 2 {
		t.Errorf("step group %+v", g)
	}
	if r := wf.Status.Nodes["failing"]; r.Type != wfv1.NodeTypeSteps || r.Phase != wfv1.NodeFailed || len(r.Children) != 2 {
		t.Errorf("steps node %+v", r)
	}
	for _, n := range wf.Status.Nodes {
		if n.DisplayName == "deploy" {
			t.Errorf("deploy ran after a failed group")
		}
	}
}

// orderWorkflow records its nodes' order in a file named by a parameter;
// the nodes "b" and "c" each wait for the other to have started, so they
// only finish if they run in parallel.
const orderTemplates = `
  - name: rec
    inputs: {parameters: [{name: id}]}
    container:
      command: [sh, -c]
      args:
      - |
        echo start-{{inputs.parameters.id}} >> {{workflow.parameters.log}}
        case {{inputs.parameters.id}} in b) other=c;; c) other=b;; *) other=;; esac
        i=0
        while [ -n "$other" ] && ! grep -q start-$other {{workflow.parameters.log}}; do
          i=$((i+1)); [ $i -lt 1000 ] || exit 9; sleep 0.01
        done
        echo end-{{inputs.parameters.id}} >> {{workflow.parameters.log}}
`

func checkOrder(t *testing.T, log string) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	at := func(s string) int {
		i := slices.Index(lines, s)
		if i < 0 {
			t.Fatalf("%s missing from %v", s, lines)
		}
		return i
	}
	if at("end-a") > at("start-b") || at("end-a") > at("start-c") ||
		at("end-b") > at("start-d") || at("end-c") > at("start-d") {
		t.Errorf("order %v", lines)
	}
}

func TestStepsRunInOrderAndGroupsInParallel(t *testing.T) {
	log := filepath.Join(t.TempDir(), "order")
	api := newFakeAPI(t, workflow(t, fmt.Sprintf(`
metadata: {name: steps}
spec:
  entrypoint: main
  arguments: {parameters: [{name: log, value: %q}]}
  templates:
  - name: main
    steps:
    - [{name: a, template: rec, arguments: {parameters: [{name: id, value: a}]}}]
    - - {name: b, template: rec, arguments: {parameters: [{name: id, value: b}]}}
      - {name: c, template: rec, arguments: {parameters: [{name: id, value: c}]}}
    - [{name: d, template: rec, arguments: {parameters: [{name: id, value: d}]}}]
%s`, log, orderTemplates)))
	start(t, api, Config{Clock: newFakeClock()})
	if wf := waitDone(t, api, "steps"); wf.Status.Phase != wfv1.WorkflowSucceeded {
		t.Fatalf("phase %s: %s", wf.Status.Phase, wf.Status.Message)
	}
	checkOrder(t, log)
}

func TestDAGFollowsDependencies(t *testing.T) {
	log := filepath.Join(t.TempDir(), "order")
	api := newFakeAPI(t, workflow(t, fmt.Sprintf(`
metadata: {name: dag}
spec:
  entrypoint: main
  arguments: {parameters: [{name: log, value: %q}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: d, template: rec, depends: "b && c.Succeeded", arguments: {parameters: [{name: id, value: d}]}}
      - {name: b, template: rec, dependencies: [a], arguments: {parameters: [{name: id, value: b}]}}
      - {name: c, template: rec, dependencies: [a], arguments: {parameters: [{name: id, value: c}]}}
      - {name: a, template: rec, arguments: {parameters: [{name: id, value: a}]}}
%s`, log, orderTemplates)))
	start(t, api, Config{Clock: newFakeClock()})
	wf := waitDone(t, api, "dag")
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		t.Fatalf("phase %s: %s", wf.Status.Phase, wf.Status.Message)
	}
	checkOrder(t, log)
	id := func(task string) string { return node(t, wf, task).ID }
	children := func(n wfv1.NodeStatus) []string { return slices.Sorted(slices.Values(n.Children)) }
	if root := wf.Status.Nodes["dag"]; root.Type != wfv1.NodeTypeDAG || !slices.Equal(root.Children, []string{id("a")}) {
		t.Errorf("dag node %+v", root)
	}
	if got, want := children(node(t, wf, "a")), slices.Sorted(slices.Values([]string{id("b"), id("c")})); !slices.Equal(got, want) {
		t.Errorf("a's children %v, want %v", got, want)
	}
	if n := node(t, wf, "c"); !slices.Equal(n.Children, []string{id("d")}) || n.Name != "dag.c" || n.BoundaryID != "dag" {
		t.Errorf("c %+v", n)
	}
}

func TestDAGStopsAfterAFailureUnlessContinued(t *testing.T) {
	api := newFakeAPI(t, workflow(t, `
metadata: {name: dagfail}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: flaky, template: fail, continueOn: {failed: true}}
      - {name: after-flaky, template: ok, dependencies: [flaky]}
      - {name: broken, template: fail, dependencies: [after-flaky]}
      - {name: never, template: ok, dependencies: [broken]}
  - {name: ok, container: {command: ["true"]}}
  - {name: fail, container: {command: [sh, -c, "exit 3"]}}
`))
	start(t, api, Config{Clock: newFakeClock()})
	wf := waitDone(t, api, "dagfail")
	if wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "exit code 3" {
		t.Fatalf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
	if n := node(t, wf, "after-flaky"); n.Phase != wfv1.NodeSucceeded {
		t.Errorf("after-flaky: %s", n.Phase)
	}
	if n := node(t, wf, "broken"); n.Phase != wfv1.NodeFailed {
		t.Errorf("broken: %s", n.Phase)
	}
	for _, n := range wf.Status.Nodes {
		if n.DisplayName == "never" {
			t.Error("a task ran after its dependency failed")
		}
	}
}

func TestParametersAreSubstituted(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	api := newFakeAPI(t, workflow(t, fmt.Sprintf(`
metadata: {name: params}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: out, value: %q}
    - {name: greeting, value: hello}
  templates:
  - name: main
    inputs: {parameters: [{name: greeting}]}
    steps:
    - - name: say
        template: say
        arguments: {parameters: [{name: what, value: "{{inputs.parameters.greeting}} from {{workflow.name}}"}]}
  - name: say
    inputs:
      parameters:
      - {name: what}
      - {name: where, default: "{{workflow.namespace}}"}
    container:
      command: [sh, -c, 'echo "$MSG {{ inputs.parameters.where }} {{workflow.parameters.greeting}}" > {{workflow.parameters.out}}']
      env: [{name: MSG, value: "{{inputs.parameters.what}}"}]
`, out)))
	start(t, api, Config{Clock: newFakeClock()})
	if wf := waitDone(t, api, "params"); wf.Status.Phase != wfv1.WorkflowSucceeded {
		t.Fatalf("phase %s: %s", wf.Status.Phase, wf.Status.Message)
	}
	if got, want := waitFile(t, out), "hello from params ci-demo hello"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestUnresolvedParameterIsAnError(t *testing.T) {
	api := newFakeAPI(t, workflow(t, `
metadata: {name: unresolved}
spec:
  entrypoint: main
  templates:
  - {name: main, container: {command: [echo, "{{inputs.parameters.nope}}"]}}
`))
	start(t, api, Config{Clock: newFakeClock()})
	wf := waitDone(t, api, "unresolved")
	if wf.Status.Phase != wfv1.WorkflowError || wf.Status.Message != "failed to resolve {{inputs.parameters.nope}}" {
		t.Fatalf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
}

func TestScriptTemplate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	api := newFakeAPI(t, workflow(t, fmt.Sprintf(`
metadata: {name: script}
spec:
  entrypoint: main
  arguments: {parameters: [{name: out, value: %q}]}
  templates:
  - name: main
    script:
      image: python:3
      command: [sh]
      workingDir: /src/sub
      env: [{name: WHO, value: world}]
      source: |
        set -e
        echo "hello $WHO" > {{workflow.parameters.out}}
        pwd >> {{workflow.parameters.out}}
        echo "$HOME" >> {{workflow.parameters.out}}
        test -z "$ARGOLOCAL_TEST_SECRET"
`, out)))
	t.Setenv("ARGOLOCAL_TEST_SECRET", "must not leak")
	start(t, api, Config{Clock: newFakeClock()})
	wf := waitDone(t, api, "script")
	if wf.Status.Phase != wfv1.WorkflowSucceeded {
		t.Fatalf("phase %s: %s", wf.Status.Phase, wf.Status.Message)
	}
	dir := filepath.Join(wf.Annotations[AnnotationWorkDir], "script")
	if got, want := waitFile(t, out), "hello world\n"+dir+"/src/sub\n"+dir+".home"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPythonScript(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	api := newFakeAPI(t, workflow(t, `
metadata: {name: py}
spec:
  entrypoint: main
  templates:
  - name: main
    script: {command: [python3], source: "import sys; print('from', '{{workflow.name}}'); sys.exit(4)"}
`))
	start(t, api, Config{Clock: newFakeClock(), Env: []string{"PATH=" + os.Getenv("PATH")}})
	wf := waitDone(t, api, "py")
	if wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "exit code 4" {
		t.Fatalf("phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
	if log := readFile(t, filepath.Join(wf.Annotations[AnnotationWorkDir], "py.log")); log != "from py\n" {
		t.Errorf("log %q", log)
	}
}

func TestWorkflowTemplateRef(t *testing.T) {
	out := t.TempDir()
	tmpl := &wfv1.WorkflowTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "ci", Namespace: ns},
		Spec:       workflow(t, ciSpec).Spec,
	}
	cluster := &wfv1.ClusterWorkflowTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "ci-cluster"},
		Spec:       workflow(t, ciSpec).Spec,
	}
	api := newFakeAPI(t, tmpl, cluster, workflow(t, fmt.Sprintf(`
metadata: {name: from-template}
spec:
  workflowTemplateRef: {name: ci}
  arguments: {parameters: [{name: out, value: %q}, {name: flavour, value: chosen}]}
`, out+"/ns")), workflow(t, fmt.Sprintf(`
metadata: {name: from-cluster-template}
spec:
  workflowTemplateRef: {name: ci-cluster, clusterScope: true}
  arguments: {parameters: [{name: out, value: %q}]}
`, out+"/cluster")), workflow(t, `
metadata: {name: from-missing-template}
spec:
  workflowTemplateRef: {name: nope}
`))
	start(t, api, Config{Clock: newFakeClock()})
	for name, want := range map[string]string{"from-template": "chosen", "from-cluster-template": "default"} {
		if wf := waitDone(t, api, name); wf.Status.Phase != wfv1.WorkflowSucceeded {
			t.Errorf("%s: phase %s: %s", name, wf.Status.Phase, wf.Status.Message)
		}
		file := out + "/ns"
		if name == "from-cluster-template" {
			file = out + "/cluster"
		}
		if got := waitFile(t, file); got != want {
			t.Errorf("%s wrote %q, want %q", name, got, want)
		}
	}
	if wf := waitDone(t, api, "from-missing-template"); wf.Status.Phase != wfv1.WorkflowError ||
		!strings.Contains(wf.Status.Message, "not found") {
		t.Errorf("missing template: phase %s message %q", wf.Status.Phase, wf.Status.Message)
	}
}

const ciSpec = `
spec:
  entrypoint: main
  arguments: {parameters: [{name: out, value: /nonexistent}, {name: flavour, value: default}]}
  templates:
  - name: main
    container: {command: [sh, -c, "echo {{workflow.parameters.flavour}} > {{workflow.parameters.out}}"]}
`
