package argo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

func TestFailedPods(t *testing.T) {
	nodes := wfv1.Nodes{
		"root":    {ID: "root", Type: wfv1.NodeTypeSteps, Phase: wfv1.NodeFailed, Children: []string{"r1", "r2", "plain"}},
		"r1":      {ID: "r1", Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeSucceeded, Children: []string{"r1a", "r1b"}},
		"r1a":     {ID: "r1a", DisplayName: "flaky(0)", Type: wfv1.NodeTypePod, Phase: wfv1.NodeFailed},
		"r1b":     {ID: "r1b", DisplayName: "flaky(1)", Type: wfv1.NodeTypePod, Phase: wfv1.NodeSucceeded},
		"r2":      {ID: "r2", Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeFailed, Children: []string{"r2a", "r2b"}},
		"r2a":     {ID: "r2a", DisplayName: "broken(0)", Type: wfv1.NodeTypePod, Phase: wfv1.NodeError, StartedAt: metav1.NewTime(t0)},
		"r2b":     {ID: "r2b", DisplayName: "broken(1)", Type: wfv1.NodeTypePod, Phase: wfv1.NodeFailed, StartedAt: metav1.NewTime(t0.Add(2))},
		"plain":   {ID: "plain", Name: "wf[0].plain", Type: wfv1.NodeTypePod, Phase: wfv1.NodeError, StartedAt: metav1.NewTime(t0.Add(1))},
		"skipped": {ID: "skipped", Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeFailed},
	}
	var names []string
	for _, n := range failedPods(&wfv1.WorkflowStatus{Nodes: nodes}) {
		names = append(names, nodeName(n))
	}
	if fmt.Sprint(names) != "[wf[0].plain broken(1)]" {
		t.Errorf("failed pods %v", names)
	}

	// Large workflows carry their nodes compressed.
	raw, _ := json.Marshal(nodes)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	st := &wfv1.WorkflowStatus{CompressedNodes: base64.StdEncoding.EncodeToString(buf.Bytes())}
	if got := failedPods(st); len(got) != 2 {
		t.Errorf("compressed: %d failed pods", len(got))
	}
	if got := failedPods(&wfv1.WorkflowStatus{CompressedNodes: "not base64!"}); len(got) != 0 {
		t.Errorf("garbage: %v", got)
	}
}

func TestPhaseOf(t *testing.T) {
	for in, want := range map[wfv1.WorkflowPhase]pipeline.Phase{
		"": pipeline.PhasePending, wfv1.WorkflowPending: pipeline.PhasePending, wfv1.WorkflowRunning: pipeline.PhaseRunning,
		wfv1.WorkflowSucceeded: pipeline.PhaseSucceeded, wfv1.WorkflowFailed: pipeline.PhaseFailed, wfv1.WorkflowError: pipeline.PhaseError,
		"Bogus": pipeline.PhasePending,
	} {
		if got := phaseOf(in); got != want {
			t.Errorf("phaseOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "argoproj.io", Resource: "workflows"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewConflict(gr, "x", errors.New("modified")), true},
		{apierrors.NewServerTimeout(gr, "create", 1), true},
		{apierrors.NewTimeoutError("x", 1), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewInternalError(errors.New("boom")), true},
		{apierrors.NewServiceUnavailable("x"), true},
		{apierrors.NewGenericServerResponse(502, "get", gr, "x", "bad gateway", 0, true), true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{apierrors.NewForbidden(gr, "x", errors.New("exceeded quota")), false},
		{apierrors.NewInvalid(schema.GroupKind{Group: "argoproj.io", Kind: "Workflow"}, "x", nil), false},
		{apierrors.NewBadRequest("x"), false},
		{apierrors.NewNotFound(gr, "x"), false},
		{apierrors.NewUnauthorized("x"), false},
		{context.Canceled, false},
		{permanent{apierrors.NewServiceUnavailable("x")}, false},
		{retryable{apierrors.NewNotFound(gr, "x")}, true},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestOutboxKeepsOrderWithoutBlocking(t *testing.T) {
	o := newOutbox()
	for i := range 1000 { // nobody reads yet: push must not block
		o.push(pipeline.BuildResult{BuildSet: fmt.Sprint(i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan pipeline.BuildResult)
	go o.run(ctx, out)
	for i := range 1000 {
		if r := <-out; r.BuildSet != fmt.Sprint(i) {
			t.Fatalf("got %s, want %d", r.BuildSet, i)
		}
	}
	cancel()
	if _, ok := <-out; ok {
		t.Error("out not closed")
	}
}
