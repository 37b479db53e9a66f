package argolocal

// This file holds how status reaches the API server: Update with retry on
// Conflict, the labels Argo sets, and the per-execution node bookkeeping.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels Argo's controller sets on every Workflow it runs.
const (
	labelPhase     = "workflows.argoproj.io/phase"
	labelCompleted = "workflows.argoproj.io/completed"
	// AnnotationWorkDir names the directory holding the Workflow's node
	// directories, logs and scripts.
	AnnotationWorkDir = "argolocal.seakeeper.io/workdir"
)

// NodeLog returns the path of the file holding the output of the node
// nodeID of wf, or "" if argolocal has not run wf.
func NodeLog(wf *wfv1.Workflow, nodeID string) string {
	dir := wf.Annotations[AnnotationWorkDir]
	if dir == "" || nodeID == "" {
		return ""
	}
	return filepath.Join(dir, nodeID+".log")
}

func setPhaseLabels(wf *wfv1.Workflow) {
	if wf.Status.Phase == "" {
		return
	}
	if wf.Labels == nil {
		wf.Labels = map[string]string{}
	}
	wf.Labels[labelPhase] = string(wf.Status.Phase)
	wf.Labels[labelCompleted] = fmt.Sprint(wf.Status.Phase.Completed())
}

// update writes a Workflow changed by apply, starting from cached (which it
// does not modify). On Conflict it reads the Workflow again and re-applies;
// other errors are retried a few times, except those that cannot heal.
// apply returns false to write nothing. A Workflow that is gone, or
// re-created with another UID, is not written and update returns nil, nil.
func (c *Controller) update(ctx context.Context, cached *wfv1.Workflow, apply func(*wfv1.Workflow) bool) (*wfv1.Workflow, error) {
	client := c.cfg.Client.ArgoprojV1alpha1().Workflows(cached.Namespace)
	name, uid := cached.Name, cached.UID
	cur := cached.DeepCopy()
	delay, failures := 50*time.Millisecond, 0
	for conflicts := 0; ; {
		if err := ctx.Err(); err != nil { // a fake clientset would write anyway
			return nil, err
		}
		var err error
		if cur == nil {
			cur, err = client.Get(ctx, name, metav1.GetOptions{})
		}
		if err == nil {
			if cur.UID != uid {
				return nil, nil
			}
			if !apply(cur) {
				return cur, nil
			}
			var updated *wfv1.Workflow
			if updated, err = client.Update(ctx, cur, metav1.UpdateOptions{}); err == nil {
				return updated, nil
			}
		}
		cur = nil
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil
		case apierrors.IsConflict(err) && conflicts < 100:
			conflicts++
			continue
		case ctx.Err() != nil, apierrors.IsInvalid(err), apierrors.IsForbidden(err),
			apierrors.IsBadRequest(err), apierrors.IsUnauthorized(err), failures >= 5:
			return nil, fmt.Errorf("update workflow %s/%s: %w", cached.Namespace, name, err)
		}
		failures++
		t := c.cfg.Clock.NewTimer(delay)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		delay *= 2
	}
}

// A stopError is why an execution, or one node of it, was stopped early;
// its text becomes the message of the nodes it killed.
type stopError struct {
	msg      string
	shutdown bool // from spec.shutdown
}

func (e *stopError) Error() string { return e.msg }

var (
	errDeadline = &stopError{msg: "Step exceeded its deadline"}
	errDeleted  = &stopError{msg: "workflow deleted"}
	errStopped  = &stopError{msg: "argolocal stopped"}
	errFinished = &stopError{msg: "finished"}
)

func shutdownError(s wfv1.ShutdownStrategy) error {
	return &stopError{msg: fmt.Sprintf("Stopped with strategy '%s'", s), shutdown: true}
}

// causeMessage is the message for nodes ended by ctx.
func causeMessage(ctx context.Context) string {
	var se *stopError
	if errors.As(context.Cause(ctx), &se) {
		return se.msg
	}
	return errStopped.msg
}

// nodeID is the ID of the node called name: the workflow's name for the
// root node, as in Argo, and a hash of the name for the others.
func (e *execution) nodeID(name string) string {
	if name == e.name {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s-%d", e.name, h.Sum32())
}

// startNode records a running node and links it under parents.
func (e *execution) startNode(name, display string, typ wfv1.NodeType, tmpl, boundary string, parents []string) string {
	id := e.nodeID(name)
	now := metav1.NewTime(e.c.cfg.Clock.Now())
	e.mu.Lock()
	e.status.Nodes[id] = wfv1.NodeStatus{
		ID: id, Name: name, DisplayName: display, Type: typ, TemplateName: tmpl,
		BoundaryID: boundary, Phase: wfv1.NodeRunning, StartedAt: now,
	}
	for _, p := range parents {
		if n, ok := e.status.Nodes[p]; ok {
			n.Children = append(n.Children, id)
			e.status.Nodes[p] = n
		}
	}
	e.mu.Unlock()
	e.changed()
	return id
}

// endNode records the end of a node.
func (e *execution) endNode(id string, phase wfv1.NodePhase, msg string) {
	now := metav1.NewTime(e.c.cfg.Clock.Now())
	e.mu.Lock()
	n := e.status.Nodes[id]
	n.Phase, n.Message, n.FinishedAt = phase, msg, now
	e.status.Nodes[id] = n
	e.mu.Unlock()
	e.changed()
	if phase != wfv1.NodeSucceeded {
		e.log.Info("node ended", "node", n.Name, "phase", phase, "message", msg)
	}
}

// setWorkflow records a workflow-level transition.
func (e *execution) setWorkflow(phase wfv1.WorkflowPhase, msg string) {
	now := metav1.NewTime(e.c.cfg.Clock.Now())
	e.mu.Lock()
	e.status.Phase, e.status.Message = phase, msg
	switch {
	case phase == wfv1.WorkflowRunning:
		e.status.StartedAt = now
	case phase.Completed():
		if e.status.StartedAt.IsZero() {
			e.status.StartedAt = now
		}
		e.status.FinishedAt = now
	}
	e.mu.Unlock()
	e.changed()
}

// changed asks the writer for a status write; requests made while a write
// is in flight are coalesced into the next one.
func (e *execution) changed() {
	select {
	case e.dirty <- struct{}{}:
	default:
	}
}

// writer writes status whenever it changed, until stop is closed.
func (e *execution) writer(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-e.dirty:
			e.flush(ctx)
		case <-stop:
			return
		}
	}
}

// flush writes the current status. Only the writer goroutine, or run once
// the writer has stopped, calls it.
func (e *execution) flush(ctx context.Context) {
	e.mu.Lock()
	st := e.status.DeepCopy()
	e.mu.Unlock()
	var pods, succeeded int
	for _, n := range st.Nodes {
		if n.Type == wfv1.NodeTypePod {
			pods++
			if n.Phase == wfv1.NodeSucceeded {
				succeeded++
			}
		}
	}
	if pods > 0 {
		st.Progress = wfv1.Progress(fmt.Sprintf("%d/%d", succeeded, pods))
	}
	updated, err := e.c.update(ctx, e.obj, func(cur *wfv1.Workflow) bool {
		cur.Status = *st
		setPhaseLabels(cur)
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations[AnnotationWorkDir] = e.dir
		return true
	})
	switch {
	case err != nil && ctx.Err() == nil:
		e.log.Error("writing status", "err", err)
	case updated != nil:
		e.obj = updated
	}
}
