package argolocal

// This file holds the controller: configuration, the informer and work
// queue, and the reconcile step that decides what to do with a Workflow.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/seakeeper-ci/seakeeper/internal/clock"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	informers "github.com/argoproj/argo-workflows/v3/pkg/client/informers/externalversions/workflow/v1alpha1"
	listers "github.com/argoproj/argo-workflows/v3/pkg/client/listers/workflow/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Config configures a Controller.
type Config struct {
	// Client reaches the Workflows: a real clientset or the generated fake.
	Client versioned.Interface
	// Namespace limits the controller to one namespace; "" means all.
	Namespace string
	// LabelSelector limits it to matching Workflows, e.g.
	// "seakeeper.io/buildset" (the label exists). "" means all.
	LabelSelector string
	// WorkDir holds one directory per node (see the package doc). Required.
	WorkDir string
	// Parallel is how many Workflows run at once; 0 means 4. The others
	// wait in phase Pending.
	Parallel int
	// Env is extra environment for every process, e.g. "PATH=...".
	Env []string
	// Clock gives timestamps and deadlines; nil means the system clock.
	Clock Clock
	// Logger receives what the controller does; nil discards it.
	Logger *slog.Logger
}

// Clock is the controller's source of time.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock, like time.Timer.
type Timer = clock.Timer

// SystemClock is the Clock of package time.
type SystemClock = clock.System

// Controller runs Workflows on this machine. Create it with New, start it
// with Run.
type Controller struct {
	cfg      Config
	selector labels.Selector
	log      *slog.Logger
	slots    chan struct{}
	started  atomic.Bool

	queue  workqueue.TypedRateLimitingInterface[string]
	lister listers.WorkflowLister

	mu    sync.Mutex
	execs map[string]*execution // by namespace/name, while running
	// done holds, by key, the UID of a Workflow this incarnation ran to the
	// end, so that its own stale Running in the cache is not taken for a
	// previous incarnation's. Keyed by name, not UID, because the fake
	// clientset leaves UIDs empty; a delete event clears the entry.
	done map[string]types.UID
	wg   sync.WaitGroup // executions
}

// Message of a Workflow found Running that this incarnation did not start.
const restartedMessage = "argolocal restarted"

// New checks cfg and returns a Controller.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("argolocal: Config.Client is nil")
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("argolocal: Config.WorkDir is empty")
	}
	dir, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("argolocal: WorkDir: %w", err)
	}
	cfg.WorkDir = dir
	sel, err := labels.Parse(cfg.LabelSelector)
	if err != nil {
		return nil, fmt.Errorf("argolocal: LabelSelector: %w", err)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Env = append([]string(nil), cfg.Env...)
	return &Controller{
		cfg:      cfg,
		selector: sel,
		log:      cfg.Logger.With("component", "argolocal"),
		slots:    make(chan struct{}, cfg.Parallel),
		execs:    map[string]*execution{},
		done:     map[string]types.UID{},
	}, nil
}

// Run watches Workflows and runs them until ctx is done. Before it returns
// it kills every process it started and waits for them; it does not write
// their status then (see "Restarts" in the package doc). Run may be called
// once; it returns nil when ctx ends it.
func (c *Controller) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("argolocal: Run called twice")
	}
	c.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	informer := informers.NewFilteredWorkflowInformer(c.cfg.Client, c.cfg.Namespace, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(o *metav1.ListOptions) { o.LabelSelector = c.cfg.LabelSelector })
	c.lister = listers.NewWorkflowLister(informer.GetIndexer())
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.deleted,
	}); err != nil {
		return fmt.Errorf("argolocal: %w", err)
	}
	var background sync.WaitGroup
	defer background.Wait()
	background.Go(func() { informer.RunWithContext(ctx) })
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil
	}
	c.log.Info("watching workflows", "namespace", c.cfg.Namespace, "selector", c.cfg.LabelSelector,
		"workdir", c.cfg.WorkDir, "parallel", c.cfg.Parallel)

	var workers sync.WaitGroup
	for range 2 {
		workers.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	workers.Wait()
	c.wg.Wait()
	return nil
}

// enqueue adds a Workflow's key, re-checking what a fake clientset's watch
// does not filter.
func (c *Controller) enqueue(obj any) {
	wf, ok := obj.(*wfv1.Workflow)
	if !ok || !c.wants(wf) {
		return
	}
	c.queue.Add(wf.Namespace + "/" + wf.Name)
}

func (c *Controller) wants(wf *wfv1.Workflow) bool {
	return (c.cfg.Namespace == "" || wf.Namespace == c.cfg.Namespace) &&
		c.selector.Matches(labels.Set(wf.Labels))
}

func (c *Controller) deleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	wf, ok := obj.(*wfv1.Workflow)
	if !ok {
		return
	}
	c.mu.Lock()
	if uid, ok := c.done[wf.Namespace+"/"+wf.Name]; ok && uid == wf.UID {
		delete(c.done, wf.Namespace+"/"+wf.Name)
	}
	c.mu.Unlock()
	c.queue.Add(wf.Namespace + "/" + wf.Name)
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.reconcile(ctx, key); err != nil && ctx.Err() == nil {
		if c.queue.NumRequeues(key) < 10 {
			c.log.Warn("reconcile failed, retrying", "workflow", key, "err", err)
			c.queue.AddRateLimited(key)
			return true
		}
		c.log.Error("reconcile failed, giving up", "workflow", key, "err", err)
	}
	c.queue.Forget(key)
	return true
}

// reconcile brings one Workflow a step closer to what it asks for. It is
// idempotent: it may see the same Workflow any number of times.
func (c *Controller) reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	wf, err := c.lister.Workflows(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.stopExecution(key, errDeleted)
		return nil
	}
	if err != nil {
		return err
	}
	if !c.wants(wf) {
		return nil
	}

	c.mu.Lock()
	if ex := c.execs[key]; ex != nil {
		c.mu.Unlock()
		switch {
		case ex.uid != wf.UID: // deleted and re-created: the old one ends, then re-enqueues
			ex.stop(errDeleted)
		case wf.Spec.Shutdown.Enabled():
			ex.stop(shutdownError(wf.Spec.Shutdown))
		}
		return nil
	}
	if uid, ok := c.done[key]; ok && uid == wf.UID {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()

	switch {
	case wf.Status.Phase.Completed():
		return nil
	case wf.Status.Phase == wfv1.WorkflowRunning:
		return c.markRestarted(ctx, wf)
	case wf.Spec.Shutdown.Enabled():
		return c.markStopped(ctx, wf)
	}

	ex := newExecution(ctx, c, wf)
	c.mu.Lock()
	c.execs[key] = ex
	c.wg.Add(1)
	c.mu.Unlock()
	go ex.run(ctx)
	return nil
}

// stopExecution stops the execution of key, if any.
func (c *Controller) stopExecution(key string, cause error) {
	c.mu.Lock()
	ex := c.execs[key]
	c.mu.Unlock()
	if ex != nil {
		ex.stop(cause)
	}
}

// finished is called by an execution when it has written its last status.
func (c *Controller) finished(ex *execution) {
	c.mu.Lock()
	delete(c.execs, ex.key)
	if causeMessage(ex.ctx) != errDeleted.msg {
		c.done[ex.key] = ex.uid
	}
	c.mu.Unlock()
	c.queue.Add(ex.key)
	c.wg.Done()
}

// markRestarted fails a Workflow that a previous incarnation was running.
func (c *Controller) markRestarted(ctx context.Context, wf *wfv1.Workflow) error {
	now := metav1.NewTime(c.cfg.Clock.Now())
	c.log.Info("failing workflow left running by a previous incarnation", "workflow", wf.Namespace+"/"+wf.Name)
	_, err := c.update(ctx, wf, func(cur *wfv1.Workflow) bool {
		if cur.Status.Phase != wfv1.WorkflowRunning {
			return false
		}
		for id, n := range cur.Status.Nodes {
			if !n.Fulfilled() {
				n.Phase, n.Message, n.FinishedAt = wfv1.NodeFailed, restartedMessage, now
				cur.Status.Nodes[id] = n
			}
		}
		cur.Status.Phase, cur.Status.Message, cur.Status.FinishedAt = wfv1.WorkflowFailed, restartedMessage, now
		setPhaseLabels(cur)
		return true
	})
	return err
}

// markStopped fails a Workflow that was shut down before it started.
func (c *Controller) markStopped(ctx context.Context, wf *wfv1.Workflow) error {
	now := metav1.NewTime(c.cfg.Clock.Now())
	msg := shutdownError(wf.Spec.Shutdown).Error()
	_, err := c.update(ctx, wf, func(cur *wfv1.Workflow) bool {
		if cur.Status.Phase.Completed() || cur.Status.Phase == wfv1.WorkflowRunning {
			return false
		}
		if cur.Status.StartedAt.IsZero() {
			cur.Status.StartedAt = now
		}
		cur.Status.Phase, cur.Status.Message, cur.Status.FinishedAt = wfv1.WorkflowFailed, msg, now
		setPhaseLabels(cur)
		return true
	})
	return err
}
