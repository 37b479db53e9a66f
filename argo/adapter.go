package argo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Options configure an Adapter. Client and Configs are required.
type Options struct {
	Client  versioned.Interface
	Configs *ConfigCache
	Render  RenderOptions
	// ArgoURL is the Argo UI, for links (optional).
	ArgoURL string
	// MaxWorkflows caps the workflows running at once (default 100).
	MaxWorkflows int
	// Namespaced makes the adapter watch one namespace at a time (the
	// Namespaces listed, and each namespace it submits to), which a Role
	// per project namespace allows. Otherwise it watches all namespaces,
	// which needs list and watch on workflows cluster-wide. Adopt sees only
	// the namespaces watched.
	Namespaced bool
	Namespaces []string
	// NamespaceClient, when set, creates a project's namespace (labelled
	// seakeeper.io/managed=true) before its first workflow.
	NamespaceClient corev1client.NamespaceInterface
	// CancelGrace is how long a cancelled workflow may take to stop before
	// it is deleted (default 2m).
	CancelGrace time.Duration
	// Resync is the informers' resync period (default 10m).
	Resync time.Duration
	// Backoff spaces retries of transient Kubernetes errors (default 500ms
	// doubling to 1m).
	Backoff Backoff
	Clock   clock.WithDelayedExecution
	Log     *slog.Logger
	// OnAPIError, when set, is called with every failed attempt of a
	// Kubernetes API call the adapter retries (create, terminate, delete
	// a workflow, create a namespace): op names the call. A cancelled
	// context is not reported. Metrics count Kubernetes API errors with
	// it; it must return at once.
	OnAPIError func(op string, err error)
}

// Backoff is a retry schedule: Initial, doubling up to Max.
type Backoff struct{ Initial, Max time.Duration }

// Adapter submits, watches and cancels the Workflows of buildsets. Create
// it with New, then call Start before anything else; results arrive on
// Results until the context given to Start ends.
type Adapter struct {
	opts    Options
	clock   clock.WithDelayedExecution
	log     *slog.Logger
	slots   *slots
	out     *outbox
	results chan pipeline.BuildResult

	watchMu sync.Mutex // serialises starting watches
	mu      sync.Mutex
	ctx     context.Context
	entries map[string]*entry
	tombs   map[string]bool // buildsets cancelled: never (re)start them
	tombSeq []string
	watches map[string]*nsWatch
	nsDone  map[string]bool
}

type state int

const (
	stPreparing state = iota // reading project config, rendering
	stWaiting                // waiting for a slot
	stCreating               // holding a slot, creating the Workflow
	stActive                 // the Workflow exists and is watched
)

// entry is a buildset the adapter is responsible for.
type entry struct {
	bs        string
	state     state
	ns, name  string
	uid       types.UID
	slot      bool // holds a slot
	cancelled bool // results are no longer wanted
	seen      bool // the informer delivered the Workflow
	last      string
	stop      context.CancelFunc // ends the wait of Submit
	backstop  clock.Timer
}

// New checks opts and returns an adapter.
func New(opts Options) (*Adapter, error) {
	if opts.Client == nil || opts.Configs == nil {
		return nil, errors.New("argo: Options.Client and Options.Configs are required")
	}
	if opts.MaxWorkflows <= 0 {
		opts.MaxWorkflows = 100
	}
	if opts.CancelGrace <= 0 {
		opts.CancelGrace = 2 * time.Minute
	}
	if opts.Resync <= 0 {
		opts.Resync = 10 * time.Minute
	}
	if opts.Backoff.Initial <= 0 {
		opts.Backoff.Initial = 500 * time.Millisecond
	}
	if opts.Backoff.Max < opts.Backoff.Initial {
		opts.Backoff.Max = max(time.Minute, opts.Backoff.Initial)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	opts.Render = opts.Render.withDefaults()
	return &Adapter{
		opts: opts, clock: opts.Clock, log: opts.Log,
		slots: newSlots(opts.MaxWorkflows), out: newOutbox(),
		results: make(chan pipeline.BuildResult, 64),
		entries: map[string]*entry{}, tombs: map[string]bool{},
		watches: map[string]*nsWatch{}, nsDone: map[string]bool{},
	}, nil
}

// Results delivers news about buildsets, in the order it happened. It is
// closed once the context given to Start has ended.
func (a *Adapter) Results() <-chan pipeline.BuildResult { return a.results }

// Stats counts the workflows holding a slot and the submissions waiting.
type Stats struct{ Running, Waiting int }

// Stats returns the current counts.
func (a *Adapter) Stats() Stats {
	used, waiting := a.slots.counts()
	return Stats{Running: used, Waiting: waiting}
}

// Submit runs the workflow of build action act. It blocks while the
// buildset waits for a slot (call it from a goroutine of its own), and
// returns nil once the buildset is accounted for: its Workflow was created
// or adopted, or a BuildResult saying why not was emitted (project config
// error, Kubernetes refusal, a name held by another buildset), or it was
// cancelled. It returns an error only for an action that is not a build or
// when ctx ended first; calling it again is then safe. Submitting a
// buildset already known, or cancelled, does nothing.
func (a *Adapter) Submit(ctx context.Context, act pipeline.Action) error {
	if act.Kind != pipeline.ActBuild || act.BuildSet == "" || act.Pipeline == "" || act.Change.Project == "" {
		return fmt.Errorf("argo: Submit takes a build action with a pipeline, a buildset and a change, not %q %q %q %q",
			act.Kind, act.Pipeline, act.BuildSet, act.Change.Project)
	}
	a.mu.Lock()
	if a.ctx == nil {
		a.mu.Unlock()
		return errors.New("argo: Submit before Start")
	}
	if a.entries[act.BuildSet] != nil || a.tombs[act.BuildSet] {
		a.mu.Unlock()
		return nil
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	e := &entry{bs: act.BuildSet, stop: stop}
	a.entries[e.bs] = e
	a.mu.Unlock()

	wf, err := a.prepare(sctx, act)
	if err == nil {
		a.mu.Lock()
		e.state, e.ns, e.name = stWaiting, wf.Namespace, wf.Name
		a.mu.Unlock()
		err = a.slots.acquire(sctx, act.Priority)
	}
	a.mu.Lock()
	if err == nil && e.cancelled {
		a.slots.release()
	}
	if err != nil || e.cancelled {
		cancelled := e.cancelled
		a.forget(e)
		a.mu.Unlock()
		var ce *ConfigError
		switch {
		case cancelled:
			return nil
		case errors.As(err, &ce):
			a.out.push(pipeline.BuildResult{BuildSet: act.BuildSet, Phase: pipeline.PhaseError, ConfigError: ce.Msg})
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		a.out.push(pipeline.BuildResult{BuildSet: act.BuildSet, Phase: pipeline.PhaseError, Message: err.Error()})
		return nil
	}
	e.state, e.slot = stCreating, true
	a.mu.Unlock()
	return a.create(ctx, e, wf)
}

// prepare reads the project config and renders the Workflow, retrying
// while the config cannot be read.
func (a *Adapter) prepare(ctx context.Context, act pipeline.Action) (*wfv1.Workflow, error) {
	var cfg *ProjectConfig
	err := a.retry(ctx, opReadConfig, func(ctx context.Context) error {
		var err error
		cfg, err = a.opts.Configs.Get(ctx, act.Change.Project)
		var ce *ConfigError
		if errors.As(err, &ce) {
			return permanent{err}
		}
		return retryable{err}.orNil()
	})
	if err != nil {
		return nil, unwrapPermanent(err)
	}
	w, err := cfg.For(act.Pipeline)
	if err != nil {
		return nil, err
	}
	return a.opts.Render.Render(act, w)
}

// opReadConfig is the retried operation that is not a Kubernetes call.
const opReadConfig = "read project config"

// apiError tells Options.OnAPIError about a failed attempt of op: errors
// that carry a Kubernetes API status, and unmarked (transport) errors;
// not the adapter's own verdicts (a refused adoption) nor cancellation.
func (a *Adapter) apiError(op string, err error) {
	if err == nil || a.opts.OnAPIError == nil || op == opReadConfig || errors.Is(err, context.Canceled) {
		return
	}
	var status apierrors.APIStatus
	var p permanent
	var r retryable
	if errors.As(err, &status) || !errors.As(err, &p) && !errors.As(err, &r) {
		a.opts.OnAPIError(op, err)
	}
}

// create creates the Workflow of e, or adopts the one already there.
func (a *Adapter) create(ctx context.Context, e *entry, wf *wfv1.Workflow) error {
	err := a.ensureNamespace(ctx, wf.Namespace, wf.Annotations[LabelProject])
	if err == nil {
		err = a.ensureWatch(ctx, wf.Namespace)
	}
	var got *wfv1.Workflow
	if err == nil {
		wfs := a.opts.Client.ArgoprojV1alpha1().Workflows(wf.Namespace)
		err = a.retry(ctx, "create workflow", func(ctx context.Context) error {
			w, err := wfs.Create(ctx, wf, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				if w, err = wfs.Get(ctx, wf.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
					return retryable{err} // deleted meanwhile: create again
				}
				if err == nil {
					if why := mismatch(w, wf); why != "" {
						return permanent{fmt.Errorf("workflow %s/%s already exists and %s; refusing to adopt it", wf.Namespace, wf.Name, why)}
					}
					a.log.Info("adopting existing workflow", "buildset", e.bs, "workflow", wf.Namespace+"/"+wf.Name)
				}
			}
			got = w
			return err
		})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.forget(e)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !e.cancelled {
			a.out.push(pipeline.BuildResult{BuildSet: e.bs, Phase: pipeline.PhaseError, Message: describe(unwrapPermanent(err))})
		}
		return nil
	}
	e.state, e.uid = stActive, got.UID
	if e.cancelled {
		go a.terminate(a.ctx, e) //nolint:errcheck // terminate logs its errors
		return nil
	}
	if !e.seen {
		if cached := a.cached(got.Namespace, got.Name); cached != nil && cached.UID == got.UID {
			got = cached
		}
		a.observe(e, got)
	}
	return nil
}

// mismatch says why existing is not the Workflow rendered as want, or "".
func mismatch(existing, want *wfv1.Workflow) string {
	for _, k := range []string{LabelBuildSet, LabelProject, LabelChange, LabelPatchset, LabelPipeline} {
		if existing.Labels[k] != want.Labels[k] || existing.Annotations[k] != want.Annotations[k] {
			return fmt.Sprintf("belongs to buildset %q (%s=%q, not %q)",
				existing.Annotations[LabelBuildSet], k, existing.Annotations[k], want.Annotations[k])
		}
	}
	return ""
}

// forget drops e and frees its slot. a.mu is held.
func (a *Adapter) forget(e *entry) {
	if e.slot {
		e.slot = false
		a.slots.release()
	}
	if e.backstop != nil {
		e.backstop.Stop()
		e.backstop = nil
	}
	if a.entries[e.bs] == e {
		delete(a.entries, e.bs)
	}
}

// tomb remembers that bs was cancelled, so that a late Submit of it (an
// outbox replayed out of order) does not start it. a.mu is held.
func (a *Adapter) tomb(bs string) {
	const keep = 4096
	if a.tombs[bs] {
		return
	}
	a.tombs[bs] = true
	a.tombSeq = append(a.tombSeq, bs)
	if len(a.tombSeq) > keep {
		delete(a.tombs, a.tombSeq[0])
		a.tombSeq = a.tombSeq[1:]
	}
}

// ensureNamespace creates ns when the adapter is configured to.
func (a *Adapter) ensureNamespace(ctx context.Context, ns, project string) error {
	if a.opts.NamespaceClient == nil {
		return nil
	}
	a.mu.Lock()
	done := a.nsDone[ns]
	a.mu.Unlock()
	if done {
		return nil
	}
	obj := nsObject(ns, project)
	err := a.retry(ctx, "create namespace", func(ctx context.Context) error {
		_, err := a.opts.NamespaceClient.Create(ctx, obj, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err == nil {
		a.mu.Lock()
		a.nsDone[ns] = true
		a.mu.Unlock()
	}
	return err
}
