package argo

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// createdOrder returns the buildsets of the created workflows, in the
// order they were created.
func (e *env) createdOrder() []string {
	var out []string
	for _, a := range e.cs.Actions() {
		if ca, ok := a.(k8stesting.CreateAction); ok && a.GetVerb() == "create" && ca.GetResource().Resource == "workflows" {
			out = append(out, ca.GetObject().(*wfv1.Workflow).Annotations[LabelBuildSet])
		}
	}
	return out
}

func TestCapWaitsInPriorityOrder(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxWorkflows = 2 })
	submit(t, e, build("check", 1, 1, 100))
	submit(t, e, build("check", 2, 1, 100))
	e.next()
	e.next()

	// Three checks and two gates arrive while the cluster is full.
	done := map[string]chan error{}
	for _, act := range []pipeline.Action{build("check", 3, 1, 100), build("check", 4, 1, 100), build("gate", 5, 1, 200),
		build("check", 6, 1, 100), build("gate", 7, 1, 200)} {
		ch := make(chan error, 1)
		done[act.BuildSet] = ch
		go func() { ch <- e.a.Submit(context.Background(), act) }()
		e.eventually("the submission to wait", func() bool { return e.a.Stats().Waiting == len(done) })
	}
	if s := e.a.Stats(); s.Running != 2 || s.Waiting != 5 {
		t.Fatalf("stats %+v", s)
	}
	// Cancelling a waiting one just drops it.
	if err := e.a.Cancel(context.Background(), "check-4.0"); err != nil {
		t.Fatal(err)
	}
	if err := <-done["check-4.0"]; err != nil {
		t.Fatalf("cancelled submit returned %v", err)
	}
	// Each finished workflow frees one slot, taken by the best waiter.
	finish := func(bs string) {
		t.Helper()
		for _, wf := range e.list(appNS) {
			if wf.Annotations[LabelBuildSet] == bs {
				e.setStatus(appNS, wf.Name, func(s *wfv1.WorkflowStatus) { s.Phase = wfv1.WorkflowSucceeded })
			}
		}
	}
	want := []string{"check-1.0", "check-2.0"}
	for _, next := range []string{"gate-5.0", "gate-7.0", "check-3.0", "check-6.0"} {
		finish(want[len(want)-2])
		want = append(want, next)
		if err := <-done[next]; err != nil {
			t.Fatal(err)
		}
		if got := e.createdOrder(); !slices.Equal(got, want) {
			t.Fatalf("created %v, want %v", got, want)
		}
		if s := e.a.Stats(); s.Running > 2 {
			t.Fatalf("over the cap: %+v", s)
		}
	}
	for _, bs := range e.createdOrder() {
		if bs == "check-4.0" {
			t.Error("a cancelled waiting submission was created")
		}
	}
}

func TestSubmitContextEndsWhileWaiting(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxWorkflows = 1 })
	submit(t, e, build("check", 1, 1, 100))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.a.Submit(ctx, build("check", 2, 1, 100)) }()
	e.eventually("waiting", func() bool { return e.a.Stats().Waiting == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if s := e.a.Stats(); s.Waiting != 0 || s.Running != 1 {
		t.Fatalf("stats %+v", s)
	}
	// It may be submitted again later.
	go func() { done <- e.a.Submit(context.Background(), build("check", 2, 1, 100)) }()
	e.eventually("waiting again", func() bool { return e.a.Stats().Waiting == 1 })
	e.next()
	e.setStatus(appNS, WorkflowName(build("check", 1, 1, 100)), func(s *wfv1.WorkflowStatus) { s.Phase = wfv1.WorkflowSucceeded })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSlotsDirect(t *testing.T) {
	s := newSlots(1)
	ctx := context.Background()
	if err := s.acquire(ctx, 0); err != nil {
		t.Fatal(err)
	}
	got := make(chan int32, 3)
	for i, p := range []int32{1, 3, 2} {
		go func() {
			if s.acquire(ctx, p) == nil {
				got <- p
			}
		}()
		for {
			if _, w := s.counts(); w == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	var order []int32
	for range 3 {
		s.release()
		order = append(order, <-got)
	}
	if !slices.Equal(order, []int32{3, 2, 1}) {
		t.Errorf("order %v", order)
	}
	s.take()
	if used, _ := s.counts(); used != 2 {
		t.Errorf("take past the cap: used %d", used)
	}
}
