package argolocal

// This file holds one run of one Workflow, from waiting for a slot to the
// last status write.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

type execution struct {
	c               *Controller
	key, ns, name   string
	uid             types.UID
	dir             string // <WorkDir>/<ns>/<name>
	log             *slog.Logger
	ctx             context.Context // ends when the processes must die
	cancel          context.CancelCauseFunc
	obj             *wfv1.Workflow // last version read or written
	dirty           chan struct{}
	spec            *wfv1.WorkflowSpec // effective, after workflowTemplateRef
	templates       map[string]*wfv1.Template
	globals         map[string]string // workflow.* substitutions
	podSlots        chan struct{}     // spec.parallelism; nil: unlimited
	mu              sync.Mutex        // guards status and shutdownMessage
	status          wfv1.WorkflowStatus
	shutdownMessage string // set once spec.shutdown stopped the execution
}

func newExecution(ctx context.Context, c *Controller, wf *wfv1.Workflow) *execution {
	e := &execution{
		c: c, key: wf.Namespace + "/" + wf.Name, ns: wf.Namespace, name: wf.Name, uid: wf.UID,
		dir:   filepath.Join(c.cfg.WorkDir, wf.Namespace, wf.Name),
		log:   c.log.With("workflow", wf.Namespace+"/"+wf.Name),
		obj:   wf.DeepCopy(),
		dirty: make(chan struct{}, 1),
	}
	e.status = *wf.Status.DeepCopy()
	e.ctx, e.cancel = context.WithCancelCause(ctx)
	return e
}

// stop kills the execution's processes; the first cause wins and names
// what happened in the node messages.
func (e *execution) stop(cause error) {
	if se, ok := cause.(*stopError); ok && se.shutdown {
		e.mu.Lock()
		if e.shutdownMessage == "" {
			e.shutdownMessage = se.msg
		}
		e.mu.Unlock()
	}
	e.cancel(cause)
}

// run waits for a slot, runs the Workflow and writes its status. apiCtx is
// the controller's context: once it is done nothing is written any more.
func (e *execution) run(apiCtx context.Context) {
	defer e.c.finished(e)
	defer e.cancel(errFinished)

	if !e.acquireSlot(apiCtx) {
		return
	}
	defer func() { <-e.c.slots }()

	e.mu.Lock()
	e.status = wfv1.WorkflowStatus{Nodes: wfv1.Nodes{}}
	e.mu.Unlock()
	if err := e.prepare(apiCtx); err != nil {
		e.log.Info("workflow cannot run", "err", err)
		e.setWorkflow(wfv1.WorkflowError, err.Error())
		e.flush(apiCtx)
		return
	}
	e.setWorkflow(wfv1.WorkflowRunning, "")
	e.log.Info("workflow started", "entrypoint", e.spec.Entrypoint)
	e.flush(apiCtx)

	stopWriter, writerDone := make(chan struct{}), make(chan struct{})
	go e.writer(apiCtx, stopWriter, writerDone)
	if ads := e.spec.ActiveDeadlineSeconds; ads != nil {
		e.mu.Lock()
		deadline := e.status.StartedAt.Add(time.Duration(*ads) * time.Second)
		e.mu.Unlock()
		e.stopAt(e.ctx, deadline, e.stop)
	}

	root := e.runTemplate(e.ctx, call{
		name: e.name, display: e.name, template: e.spec.Entrypoint,
		args: e.spec.Arguments,
	})

	close(stopWriter)
	<-writerDone
	msg := root.msg
	e.mu.Lock()
	if root.phase.FailedOrError() && e.shutdownMessage != "" {
		msg = e.shutdownMessage // as Argo does, whatever failed first
	}
	e.mu.Unlock()
	phase := wfv1.WorkflowSucceeded
	switch root.phase {
	case wfv1.NodeFailed:
		phase = wfv1.WorkflowFailed
	case wfv1.NodeError:
		phase = wfv1.WorkflowError
	}
	e.log.Info("workflow finished", "phase", phase, "message", msg)
	e.setWorkflow(phase, msg)
	e.flush(apiCtx)
}

// acquireSlot takes one of the controller's Parallel slots, writing phase
// Pending while it waits. It reports false if the execution was stopped
// first, after recording a shutdown.
func (e *execution) acquireSlot(apiCtx context.Context) bool {
	select {
	case e.c.slots <- struct{}{}:
		return true
	default:
	}
	if e.status.Phase == "" {
		e.setWorkflow(wfv1.WorkflowPending, fmt.Sprintf("waiting for one of %d argolocal slots", e.c.cfg.Parallel))
		e.flush(apiCtx)
	}
	select {
	case e.c.slots <- struct{}{}:
		return true
	case <-e.ctx.Done():
	}
	if apiCtx.Err() == nil {
		if msg := causeMessage(e.ctx); msg != errDeleted.msg {
			e.setWorkflow(wfv1.WorkflowFailed, msg)
			e.flush(apiCtx)
		}
	}
	return false
}

// stopAt calls stop(errDeadline) at deadline unless ctx ends first.
func (e *execution) stopAt(ctx context.Context, deadline time.Time, stop func(error)) {
	t := e.c.cfg.Clock.NewTimer(deadline.Sub(e.c.cfg.Clock.Now()))
	go func() {
		defer t.Stop()
		select {
		case <-t.C():
			stop(errDeadline)
		case <-ctx.Done():
		}
	}()
}

// prepare resolves the effective spec, checks what argolocal supports, and
// creates the workflow's directory.
func (e *execution) prepare(ctx context.Context) error {
	spec, err := e.c.effectiveSpec(ctx, e.obj)
	if err != nil {
		return err
	}
	if spec.Entrypoint == "" {
		return fmt.Errorf("spec.entrypoint is required")
	}
	if spec.OnExit != "" {
		return unsupported("spec.onExit")
	}
	if len(spec.Hooks) > 0 {
		return unsupported("spec.hooks")
	}
	if spec.Suspend != nil && *spec.Suspend {
		return unsupported("spec.suspend")
	}
	e.spec = spec
	e.templates = map[string]*wfv1.Template{}
	for i := range spec.Templates {
		t := &spec.Templates[i]
		if _, dup := e.templates[t.Name]; dup {
			return fmt.Errorf("template %q is defined twice", t.Name)
		}
		e.templates[t.Name] = t
	}
	e.globals = map[string]string{
		"workflow.name":      e.name,
		"workflow.namespace": e.ns,
		"workflow.uid":       string(e.uid),
	}
	for _, p := range spec.Arguments.Parameters {
		v := p.Value
		if v == nil {
			v = p.Default
		}
		if v == nil {
			return fmt.Errorf("spec.arguments.parameters.%s has no value", p.Name)
		}
		e.globals["workflow.parameters."+p.Name] = v.String()
	}
	if p := spec.Parallelism; p != nil && *p > 0 {
		e.podSlots = make(chan struct{}, *p)
	}
	// The directory is removed first, so that it holds this run only: the
	// names it is made of must not be able to reach out of WorkDir.
	for _, n := range []string{e.ns, e.name} {
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			return fmt.Errorf("argolocal: name %q: %s", n, strings.Join(errs, "; "))
		}
	}
	if err := os.RemoveAll(e.dir); err != nil {
		return fmt.Errorf("argolocal: %w", err)
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return fmt.Errorf("argolocal: %w", err)
	}
	return nil
}

func unsupported(what string) error {
	return fmt.Errorf("argolocal does not support %s", what)
}
