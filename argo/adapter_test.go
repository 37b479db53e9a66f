package argo

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

var (
	appNS  = Namespace("", "org/app")
	wfGVR  = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
	wfTime = func(m int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(m) * time.Minute)) }
)

func submit(t *testing.T, e *env, act pipeline.Action) {
	t.Helper()
	if err := e.a.Submit(context.Background(), act); err != nil {
		t.Fatal(err)
	}
}

func TestSubmitWatchToResults(t *testing.T) {
	e := newEnv(t, nil)
	act := build("gate", 12345, 3, 200)
	submit(t, e, act)
	name := WorkflowName(act)
	wf := e.get(appNS, name)
	if wf.Spec.WorkflowTemplateRef == nil || wf.Spec.WorkflowTemplateRef.Name != "ci" || *wf.Spec.Priority != 200 ||
		*wf.Spec.ActiveDeadlineSeconds != 1800 || wf.Labels[LabelBuildSet] != "gate-12345.0" {
		t.Fatalf("created %+v", wf)
	}
	if r := e.next(); r.Phase != pipeline.PhasePending || r.BuildSet != act.BuildSet {
		t.Fatalf("first result %+v", r)
	}

	e.setStatus(appNS, name, func(s *wfv1.WorkflowStatus) {
		s.Phase, s.StartedAt = wfv1.WorkflowRunning, wfTime(1)
	})
	r := e.next()
	wantURL := "https://argo.example.org/workflows/" + appNS + "/" + name + "?uid=" + string(wf.UID)
	if r.Phase != pipeline.PhaseRunning || !r.StartedAt.Equal(t0.Add(time.Minute)) || r.URL != wantURL || len(r.Nodes) != 0 {
		t.Fatalf("running %+v (url want %s)", r, wantURL)
	}

	// A pod fails while the workflow runs: reported with the node, still
	// Running (the verdict is the phase's).
	e.setStatus(appNS, name, func(s *wfv1.WorkflowStatus) {
		s.Nodes = wfv1.Nodes{
			name:         {ID: name, Name: name, Type: wfv1.NodeTypeSteps, Phase: wfv1.NodeRunning, Children: []string{name + "-1", name + "-2"}},
			name + "-1":  {ID: name + "-1", Name: name + "[0].unit", DisplayName: "unit", Type: wfv1.NodeTypePod, Phase: wfv1.NodeFailed, Message: "exit code 1", StartedAt: wfTime(2)},
			name + "-2":  {ID: name + "-2", Name: name + "[0].lint", DisplayName: "lint", Type: wfv1.NodeTypePod, Phase: wfv1.NodeSucceeded},
			name + "-xx": {ID: name + "-xx", Name: "dag", Type: wfv1.NodeTypeDAG, Phase: wfv1.NodeFailed},
		}
	})
	r = e.next()
	if r.Phase != pipeline.PhaseRunning || len(r.Nodes) != 1 || r.Nodes[0].Name != "unit" || r.Nodes[0].Message != "exit code 1" ||
		r.Nodes[0].Phase != pipeline.PhaseFailed || r.Nodes[0].URL != wantURL+"&nodeId="+name+"-1" {
		t.Fatalf("failing node %+v", r)
	}

	// An update saying nothing new is not reported.
	e.setStatus(appNS, name, func(s *wfv1.WorkflowStatus) { s.Progress = "1/2" })
	e.setStatus(appNS, name, func(s *wfv1.WorkflowStatus) {
		s.Phase, s.FinishedAt, s.Message = wfv1.WorkflowFailed, wfTime(5), "child 'unit' failed"
	})
	r = e.next()
	if r.Phase != pipeline.PhaseFailed || r.Message != "child 'unit' failed" || !r.FinishedAt.Equal(t0.Add(5*time.Minute)) || len(r.Nodes) != 1 {
		t.Fatalf("final %+v", r)
	}
	e.none()
	if s := e.a.Stats(); s.Running != 0 {
		t.Errorf("stats after finish: %+v", s)
	}
	// The verdict is the phase's even when no node failed.
	act2 := build("check", 7, 1, 100)
	submit(t, e, act2)
	e.next()
	e.setStatus(appNS, WorkflowName(act2), func(s *wfv1.WorkflowStatus) {
		s.Phase, s.Message = wfv1.WorkflowError, "pod deleted"
	})
	if r := e.next(); r.Phase != pipeline.PhaseError || r.Message != "pod deleted" || r.BuildSet != act2.BuildSet {
		t.Fatalf("error verdict %+v", r)
	}
}

func TestSubmitConfigErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.src.set("org/app", "sha2", "workflow:\n  spec:\n    entrypoint: main\n    hostPID: true\n")
	act := build("check", 1, 1, 100)
	submit(t, e, act)
	r := e.next()
	if r.Phase != pipeline.PhaseError || r.ConfigError != "seakeeper.yaml:4: workflow.spec.hostPID: not allowed in project config" {
		t.Fatalf("result %+v", r)
	}
	act2 := build("check", 2, 1, 100)
	act2.Change.Project = "org/none"
	submit(t, e, act2)
	if r := e.next(); !strings.Contains(r.ConfigError, "seakeeper.yaml: not found on refs/meta/config of org/none") {
		t.Fatalf("result %+v", r)
	}
	if v := e.verbs(); len(v) != 0 {
		t.Errorf("config errors must create nothing, sent %v", v)
	}
	if s := e.a.Stats(); s.Running != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestSubmitAdoptsOwnWorkflowAndRefusesForeign(t *testing.T) {
	act := build("gate", 5, 2, 200)
	pc, _ := ParseProjectConfig(ConfigFileName, "x", []byte(templateRefConfig), nil)
	w, _ := pc.For("gate")
	mine, err := RenderOptions{}.Render(act, w)
	if err != nil {
		t.Fatal(err)
	}
	mine.UID = "uid-mine"
	mine.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning, StartedAt: wfTime(1)}

	other := build("gate", 6, 1, 200)
	foreign := mine.DeepCopy()
	foreign.Name = WorkflowName(other)
	foreign.Annotations[LabelBuildSet], foreign.Labels[LabelBuildSet] = "gate-99.0", "gate-99.0"

	e := newEnv(t, nil, mine, foreign)
	submit(t, e, act)
	if r := e.next(); r.Phase != pipeline.PhaseRunning || !strings.Contains(r.URL, "uid=uid-mine") {
		t.Fatalf("adopted %+v", r)
	}
	submit(t, e, other)
	r := e.next()
	if r.Phase != pipeline.PhaseError || r.BuildSet != other.BuildSet ||
		!strings.Contains(r.Message, "already exists and belongs to buildset \"gate-99.0\"") || !strings.Contains(r.Message, "refusing to adopt") {
		t.Fatalf("foreign %+v", r)
	}
	if got := e.get(appNS, foreign.Name); got.Annotations[LabelBuildSet] != "gate-99.0" || got.Spec.Shutdown != "" {
		t.Errorf("the foreign workflow was touched: %+v", got)
	}
	if s := e.a.Stats(); s.Running != 1 {
		t.Errorf("stats %+v, want the adopted one running", s)
	}
	e.setStatus(appNS, mine.Name, func(s *wfv1.WorkflowStatus) { s.Phase = wfv1.WorkflowSucceeded })
	if r := e.next(); r.Phase != pipeline.PhaseSucceeded {
		t.Fatalf("adopted result %+v", r)
	}
}

func TestSubmitKubernetesErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Backoff = Backoff{Initial: time.Second, Max: 4 * time.Second} })
	calls := 0
	e.cs.PrependReactor("create", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		switch calls {
		case 1:
			return true, nil, apierrors.NewServiceUnavailable("etcd is sad")
		case 2:
			return true, nil, apierrors.NewTimeoutError("slow", 1)
		case 3:
			return false, nil, nil // created
		}
		return true, nil, apierrors.NewForbidden(wfGVR.GroupResource(), "x", errors.New(`exceeded quota: q, requested: count/workflows.argoproj.io=1`))
	})
	done := make(chan error)
	go func() { done <- e.a.Submit(context.Background(), build("gate", 1, 1, 200)) }()
	for _, step := range []time.Duration{time.Second, 2 * time.Second} {
		e.eventually("a retry timer", e.clock.HasWaiters)
		e.clock.Step(step)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := e.next(); r.Phase != pipeline.PhasePending {
		t.Fatalf("after retries %+v", r)
	}
	// Forbidden (quota) is reported, not retried; the slot is freed.
	submit(t, e, build("gate", 2, 1, 200))
	r := e.next()
	if r.Phase != pipeline.PhaseError || r.BuildSet != "gate-2.0" || !strings.Contains(r.Message, "exceeded quota") || !strings.Contains(r.Message, "RBAC or quota") {
		t.Fatalf("forbidden %+v", r)
	}
	if calls != 4 {
		t.Errorf("create calls = %d, want 4", calls)
	}
	if s := e.a.Stats(); s.Running != 1 {
		t.Errorf("stats %+v", s)
	}
	// Submitting a known buildset again does nothing.
	submit(t, e, build("gate", 1, 1, 200))
	if calls != 4 {
		t.Errorf("resubmit created again")
	}
}

func TestCancelTerminatesThenDeletes(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CancelGrace = time.Minute })
	act := build("gate", 1, 1, 200)
	submit(t, e, act)
	e.next()
	if err := e.a.Cancel(context.Background(), act.BuildSet); err != nil {
		t.Fatal(err)
	}
	var patch []byte
	for _, a := range e.cs.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			patch = p.GetPatch()
			if p.GetPatchType() != "application/merge-patch+json" {
				t.Errorf("patch type %s", p.GetPatchType())
			}
		}
	}
	if string(patch) != `{"spec":{"shutdown":"Terminate"}}` {
		t.Fatalf("patch %s", patch)
	}
	name := WorkflowName(act)
	if got := e.get(appNS, name); got.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Fatalf("shutdown = %q", got.Spec.Shutdown)
	}
	e.clock.Step(59 * time.Second)
	if slices.Contains(e.verbs(), "delete") {
		t.Fatal("deleted before the grace period")
	}
	e.clock.Step(time.Second)
	e.eventually("the backstop delete", func() bool { return len(e.list(appNS)) == 0 })
	e.eventually("the slot to be freed", func() bool { return e.a.Stats().Running == 0 })
	e.none() // a cancelled buildset reports nothing
	// A late submit of a cancelled buildset does nothing.
	submit(t, e, act)
	if len(e.list(appNS)) != 0 {
		t.Error("a cancelled buildset was submitted again")
	}
}

func TestCancelledWorkflowStopsInTime(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CancelGrace = time.Minute })
	act := build("gate", 1, 1, 200)
	submit(t, e, act)
	e.next()
	if err := e.a.Cancel(context.Background(), act.BuildSet); err != nil {
		t.Fatal(err)
	}
	e.setStatus(appNS, WorkflowName(act), func(s *wfv1.WorkflowStatus) {
		s.Phase, s.Message = wfv1.WorkflowFailed, "Stopped with strategy 'Terminate'"
	})
	e.eventually("the slot to be freed", func() bool { return e.a.Stats().Running == 0 })
	e.clock.Step(time.Hour)
	time.Sleep(20 * time.Millisecond)
	if slices.Contains(e.verbs(), "delete") {
		t.Error("a workflow that stopped was deleted")
	}
	e.none()
}

func TestDeletedBeforeFinishing(t *testing.T) {
	e := newEnv(t, nil)
	act := build("check", 3, 1, 100)
	submit(t, e, act)
	e.next()
	if err := e.cs.ArgoprojV1alpha1().Workflows(appNS).Delete(context.Background(), WorkflowName(act), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := e.next(); r.Phase != pipeline.PhaseError || !strings.Contains(r.Message, "was deleted before it finished") {
		t.Fatalf("%+v", r)
	}
}

func TestSubmitRetriesConfigReads(t *testing.T) {
	e := newEnv(t, nil)
	e.src.mu.Lock()
	e.src.err = errors.New("gerrit: 503 Service Unavailable")
	e.src.mu.Unlock()
	done := make(chan error)
	go func() { done <- e.a.Submit(context.Background(), build("check", 1, 1, 100)) }()
	e.eventually("a retry timer", e.clock.HasWaiters)
	e.src.mu.Lock()
	e.src.err = nil
	e.src.mu.Unlock()
	e.clock.Step(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := e.next(); r.Phase != pipeline.PhasePending || r.ConfigError != "" {
		t.Fatalf("%+v", r)
	}
	if err := e.a.Submit(context.Background(), pipeline.Action{Kind: pipeline.ActCancel, BuildSet: "x"}); err == nil {
		t.Error("Submit took a cancel action")
	}
}

func TestCancelWhileCreating(t *testing.T) {
	e := newEnv(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	e.cs.PrependReactor("create", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		close(entered)
		<-release
		return false, nil, nil
	})
	act := build("gate", 1, 1, 200)
	done := make(chan error)
	go func() { done <- e.a.Submit(context.Background(), act) }()
	<-entered
	if err := e.a.Cancel(context.Background(), act.BuildSet); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.eventually("the terminate patch", func() bool {
		return e.get(appNS, WorkflowName(act)).Spec.Shutdown == wfv1.ShutdownStrategyTerminate
	})
	e.none()
}
