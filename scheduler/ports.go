package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/store"
)

// GerritAPI is what the scheduler needs of Gerrit's REST API; *gerrit.Client
// has it.
type GerritAPI interface {
	ChangeSnapshot(ctx context.Context, key pipeline.ChangeKey) (*pipeline.Change, error)
	QueryOpen(ctx context.Context, query string) ([]pipeline.Change, error)
	Review(ctx context.Context, key pipeline.ChangeKey, revision string, r gerrit.ReviewInput) error
	Submit(ctx context.Context, key pipeline.ChangeKey, revision string) error
}

// MergerAPI prepares speculative git states; *merger.Merger has it.
type MergerAPI interface {
	Prepare(ctx context.Context, buildset string, changes []pipeline.Spec, base string) pipeline.MergeResult
}

// BuildAPI runs workflows; *argo.Adapter has it (after Start).
type BuildAPI interface {
	// Submit may block while waiting for a slot; it is called from a
	// goroutine of its own.
	Submit(ctx context.Context, act pipeline.Action) error
	Cancel(ctx context.Context, buildset string) error
	Adopt(ctx context.Context, wanted map[string]bool) (argo.AdoptResult, error)
	Results() <-chan pipeline.BuildResult
}

// Defaults of Options.
const (
	DefaultSettleDelay   = 3 * time.Second
	DefaultWorkers       = 16
	DefaultShutdownGrace = 5 * time.Second
	DefaultRelatedLimit  = 32
	DefaultSubmitRetries = 4
	DefaultRetryBackoff  = 2 * time.Second
)

// Options configure a Scheduler. Engine, Store, Gerrit, Merger and Builds
// are required.
type Options struct {
	Engine *pipeline.Engine
	Store  *store.Store
	Gerrit GerritAPI
	Merger MergerAPI
	Builds BuildAPI
	// Clock defaults to the system clock. It stamps events and times the
	// settle delay and the submit backoff.
	Clock  clock.Clock
	Logger *slog.Logger
	// SettleDelay is how long a Gerrit event rests in the inbox before it
	// is re-read over REST and applied (default DefaultSettleDelay; a
	// negative value means none).
	SettleDelay time.Duration
	// Workers bounds the actions carried out at once (prepare, cancel,
	// report); builds wait for a slot in the build adapter instead.
	Workers int
	// StatusURL is the public URL of the status page; reports link to
	// <StatusURL>/#<item>.
	StatusURL string
	// ResyncQuery narrows the open changes a resync looks at (Gerrit search
	// syntax; the client adds "status:open"). Empty means every open
	// change: the query only pre-filters, the core (ApprovalPipelines)
	// decides which changes an approval trigger would have enqueued. A
	// large site narrows it, e.g. "label:Code-Review=2".
	ResyncQuery string
	// RelatedLimit bounds the dependency snapshots read for one change.
	RelatedLimit int
	// ShutdownGrace is how long running actions may go on after Run's
	// context ended before their context is cancelled.
	ShutdownGrace time.Duration
	// SubmitRetries and RetryBackoff bound the retries of a submit Gerrit
	// gave no verdict on (the backoff doubles each time).
	SubmitRetries int
	RetryBackoff  time.Duration
	// Observer is told about stream items and turns (metrics, readiness);
	// nil means nobody listens.
	Observer Observer
	// TickInterval is how often the loop applies a Tick event, so that the
	// core's clock moves on without other events; zero means never (the
	// daemon sets it, tests need not).
	TickInterval time.Duration
}

// New checks the options and returns a scheduler; Run starts it.
func New(o Options) (*Scheduler, error) {
	if o.Engine == nil || o.Store == nil || o.Gerrit == nil || o.Merger == nil || o.Builds == nil {
		return nil, errors.New("scheduler: Engine, Store, Gerrit, Merger and Builds are required")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SettleDelay == 0 {
		o.SettleDelay = DefaultSettleDelay
	} else if o.SettleDelay < 0 {
		o.SettleDelay = 0
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.RelatedLimit <= 0 {
		o.RelatedLimit = DefaultRelatedLimit
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	if o.SubmitRetries <= 0 {
		o.SubmitRetries = DefaultSubmitRetries
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	return &Scheduler{
		o:     o,
		log:   o.Logger,
		sem:   make(chan struct{}, o.Workers),
		wake:  make(chan struct{}, 1),
		cands: make(chan resyncMsg, 4),
	}, nil
}
