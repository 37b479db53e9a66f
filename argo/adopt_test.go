package argo

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// existing renders the Workflow of act as a previous run would have left it.
func existing(t *testing.T, act pipeline.Action, phase wfv1.WorkflowPhase) *wfv1.Workflow {
	t.Helper()
	pc, _ := ParseProjectConfig(ConfigFileName, "x", []byte(templateRefConfig), nil)
	w, _ := pc.For(act.Pipeline)
	wf, err := RenderOptions{}.Render(act, w)
	if err != nil {
		t.Fatal(err)
	}
	wf.UID = types.UID("uid-" + wf.Name)
	wf.Status.Phase = phase
	return wf
}

func TestAdoptKeepsWantedAndCancelsOrphans(t *testing.T) {
	wantedRunning := build("gate", 1, 1, 200)
	wantedDone := build("gate", 2, 1, 200)
	orphanRunning := build("gate", 3, 1, 200)
	orphanDone := build("check", 4, 1, 100)
	unrelated := &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses", Namespace: appNS,
		Labels: map[string]string{"app": "x"}}, Status: wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning}}
	forged := existing(t, build("check", 5, 1, 100), wfv1.WorkflowRunning)
	forged.Labels[LabelBuildSet] = "something-else" // label and annotation disagree: not ours

	e := newEnv(t, func(o *Options) { o.MaxWorkflows = 1; o.CancelGrace = time.Minute },
		existing(t, wantedRunning, wfv1.WorkflowRunning), existing(t, wantedDone, wfv1.WorkflowSucceeded),
		existing(t, orphanRunning, wfv1.WorkflowRunning), existing(t, orphanDone, wfv1.WorkflowFailed), unrelated, forged)

	res, err := e.a.Adopt(context.Background(), map[string]bool{
		wantedRunning.BuildSet: true, wantedDone.BuildSet: true, "gate-9.0": true, "check-5.0": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Adopted, []string{"gate-1.0", "gate-2.0"}) || !slices.Equal(res.Cancelled, []string{"gate-3.0"}) ||
		!slices.Equal(res.Missing, []string{"check-5.0", "gate-9.0"}) {
		t.Fatalf("adopt = %+v", res)
	}
	got := map[string]pipeline.Phase{}
	for range 2 {
		r := e.next()
		got[r.BuildSet] = r.Phase
	}
	if got["gate-1.0"] != pipeline.PhaseRunning || got["gate-2.0"] != pipeline.PhaseSucceeded {
		t.Fatalf("results %v", got)
	}
	if wf := e.get(appNS, WorkflowName(orphanRunning)); wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Error("the orphan was not terminated")
	}
	for _, name := range []string{WorkflowName(wantedRunning), WorkflowName(orphanDone), "someone-elses", forged.Name} {
		if wf := e.get(appNS, name); wf.Spec.Shutdown != "" {
			t.Errorf("%s was terminated", name)
		}
	}
	// Running adopted and orphaned workflows hold slots, past the cap.
	if s := e.a.Stats(); s.Running != 2 {
		t.Errorf("stats %+v", s)
	}
	e.clock.Step(time.Minute)
	e.eventually("the orphan's backstop delete", func() bool { return len(e.list(appNS)) == 5 })
	e.eventually("its slot", func() bool { return e.a.Stats().Running == 1 })
	// A wanted workflow goes on reporting.
	e.setStatus(appNS, WorkflowName(wantedRunning), func(s *wfv1.WorkflowStatus) { s.Phase = wfv1.WorkflowSucceeded })
	if r := e.next(); r.BuildSet != "gate-1.0" || r.Phase != pipeline.PhaseSucceeded {
		t.Fatalf("%+v", r)
	}
	e.none()
}

func TestCancelOfWorkflowNotYetAdopted(t *testing.T) {
	act := build("gate", 1, 1, 200)
	e := newEnv(t, nil, existing(t, act, wfv1.WorkflowRunning))
	if err := e.a.Cancel(context.Background(), act.BuildSet); err != nil {
		t.Fatal(err)
	}
	if wf := e.get(appNS, WorkflowName(act)); wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Error("not terminated")
	}
	if err := e.a.Cancel(context.Background(), "gate-404.0"); err != nil {
		t.Errorf("cancel of an unknown buildset: %v", err)
	}
}

// nsRecorder is the Create of a NamespaceInterface; other methods panic.
type nsRecorder struct {
	corev1client.NamespaceInterface
	mu      sync.Mutex
	created []*corev1.Namespace
	exists  map[string]bool
}

func (r *nsRecorder) Create(_ context.Context, ns *corev1.Namespace, _ metav1.CreateOptions) (*corev1.Namespace, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exists[ns.Name] {
		return nil, apierrors.NewAlreadyExists(corev1.Resource("namespaces"), ns.Name)
	}
	r.created = append(r.created, ns.DeepCopy())
	return ns, nil
}

func TestNamespacedWatchAndNamespaceCreation(t *testing.T) {
	libNS := Namespace("", "org/lib")
	rec := &nsRecorder{exists: map[string]bool{appNS: true}}
	e := newEnv(t, func(o *Options) {
		o.Namespaced, o.Namespaces, o.NamespaceClient = true, []string{appNS}, rec
	})
	e.src.set("org/lib", "s", templateRefConfig)
	submit(t, e, build("check", 1, 1, 100))
	e.next()
	lib := build("check", 2, 1, 100)
	lib.Change.Project = "org/lib"
	submit(t, e, lib)
	if ns := e.waitWatch(); ns != libNS {
		t.Fatalf("watch started on %q, want %q", ns, libNS)
	}
	if r := e.next(); r.BuildSet != lib.BuildSet || r.Phase != pipeline.PhasePending {
		t.Fatalf("%+v", r)
	}
	e.setStatus(libNS, WorkflowName(lib), func(s *wfv1.WorkflowStatus) { s.Phase = wfv1.WorkflowRunning })
	if r := e.next(); r.BuildSet != lib.BuildSet || r.Phase != pipeline.PhaseRunning {
		t.Fatalf("%+v", r)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.created) != 1 || rec.created[0].Name != libNS || rec.created[0].Labels[LabelManaged] != "true" ||
		rec.created[0].Annotations[LabelProject] != "org/lib" {
		t.Fatalf("namespaces created: %+v", rec.created)
	}
}

func TestForbiddenNamespaceIsReported(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Namespaced, o.Namespaces = true, []string{appNS} })
	libNS := Namespace("", "org/lib")
	e.cs.PrependReactor("list", "workflows", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetNamespace() == libNS {
			return true, nil, apierrors.NewForbidden(wfGVR.GroupResource(), "", errors.New(`User "system:serviceaccount:ci:seakeeper" cannot list resource "workflows"`))
		}
		return false, nil, nil
	})
	e.src.set("org/lib", "s", templateRefConfig)
	lib := build("check", 2, 1, 100)
	lib.Change.Project = "org/lib"
	submit(t, e, lib)
	if r := e.next(); r.Phase != pipeline.PhaseError || !strings.Contains(r.Message, "cannot list workflows in namespace") ||
		!strings.Contains(r.Message, "RBAC or quota") {
		t.Fatalf("%+v", r)
	}
	if s := e.a.Stats(); s.Running != 0 {
		t.Errorf("stats %+v", s)
	}
}
