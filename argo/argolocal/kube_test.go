package argolocal

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestAgainstARealAPIServer runs Workflows through a real kube-apiserver
// with Argo's minimal CRDs, argolocal holding only the verbs it needs: a
// steps-and-dag Workflow to Succeeded, and one cancelled the way the argo
// adapter cancels (a merge patch of spec.shutdown), which also makes
// argolocal's status writes meet real resourceVersion conflicts.
func TestAgainstARealAPIServer(t *testing.T) {
	cluster := kubetest.Start(t)
	cluster.InstallArgoCRDs(t)
	local, err := versioned.NewForConfig(cluster.ProjectNamespace(t, ns, map[string][]string{
		"workflows":         {"get", "list", "watch", "update"},
		"workflowtemplates": {"get"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := versioned.NewForConfig(cluster.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	start(t, local, Config{Namespace: ns, LabelSelector: "seakeeper.io/buildset"})

	create(t, admin, workflow(t, `
metadata: {name: real, labels: {seakeeper.io/buildset: bs1}}
spec:
  entrypoint: main
  arguments: {parameters: [{name: word, value: real}]}
  templates:
  - name: main
    steps:
    - [{name: prepare, template: echo}]
    - [{name: checks, template: checks}]
  - name: checks
    dag:
      tasks:
      - {name: unit, template: echo}
      - {name: lint, template: echo, dependencies: [unit]}
  - name: echo
    container: {command: [sh, -c, "echo {{workflow.parameters.word}}"]}
`))
	wf := waitDone(t, admin, "real")
	if wf.Status.Phase != wfv1.WorkflowSucceeded || wf.Labels[labelCompleted] != "true" {
		t.Fatalf("phase %s message %q labels %v", wf.Status.Phase, wf.Status.Message, wf.Labels)
	}
	if len(wf.Status.Nodes) != 7 || node(t, wf, "checks").Type != wfv1.NodeTypeDAG ||
		wf.Status.StartedAt.IsZero() || wf.Status.FinishedAt.Before(&wf.Status.StartedAt) {
		t.Errorf("status %+v", wf.Status)
	}
	if log := readFile(t, filepath.Join(wf.Annotations[AnnotationWorkDir], node(t, wf, "lint").ID+".log")); log != "real\n" {
		t.Errorf("lint's log %q", log)
	}

	dir := t.TempDir()
	cancelled := sleeper(t, "cancelled", dir, "")
	cancelled.Labels = map[string]string{"seakeeper.io/buildset": "bs2"}
	create(t, admin, cancelled)
	main, _ := strconv.Atoi(waitFile(t, filepath.Join(dir, "main.pid")))
	patch := fmt.Appendf(nil, `{"spec":{"shutdown":%q}}`, wfv1.ShutdownStrategyTerminate)
	if _, err := admin.ArgoprojV1alpha1().Workflows(ns).Patch(context.Background(), "cancelled",
		types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	wf = waitDone(t, admin, "cancelled")
	if wf.Status.Phase != wfv1.WorkflowFailed || wf.Status.Message != "Stopped with strategy 'Terminate'" ||
		wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Fatalf("phase %s message %q shutdown %q", wf.Status.Phase, wf.Status.Message, wf.Spec.Shutdown)
	}
	waitGone(t, main)
}
