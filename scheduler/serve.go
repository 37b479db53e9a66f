package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"golang.org/x/crypto/ssh"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit"
	"github.com/seakeeper-ci/seakeeper/internal/clock"
	"github.com/seakeeper-ci/seakeeper/merger"
	"github.com/seakeeper-ci/seakeeper/pipeline"
	"github.com/seakeeper-ci/seakeeper/store"
)

// ServeOptions adjust Serve; the zero value is what the daemon runs with.
// Most fields exist for tests.
type ServeOptions struct {
	// Logger receives the logs of every part (default slog.Default()).
	Logger *slog.Logger
	// RestConfig, when set, is used instead of the kubeconfig of the main
	// configuration (or the in-cluster credentials).
	RestConfig *rest.Config
	// SettleDelay is the scheduler's settle delay (0: its default;
	// negative: none).
	SettleDelay time.Duration
	// Namespaced makes the Argo adapter watch project namespaces one by
	// one instead of all namespaces (see argo.Options.Namespaced).
	Namespaced bool
	// NoSync opens the store without fsync (tests only).
	NoSync bool
	// ShutdownTimeout bounds the closing of the HTTP servers (default 5s).
	ShutdownTimeout time.Duration
	// Workflows, when set, is the Argo clientset to use instead of one
	// made from the Kubernetes configuration (the demo passes a fake
	// clientset that argolocal serves). Namespaces then creates project
	// namespaces when kubernetes.create-namespaces is set.
	Workflows  versioned.Interface
	Namespaces corev1client.NamespaceInterface
	// Observer is told about stream items and turns (metrics).
	Observer Observer
	// GerritResponse and KubernetesError, when set, are told about every
	// Gerrit REST attempt and every failed Kubernetes API call of the Argo
	// adapter (metrics count API errors); they must return at once.
	GerritResponse  func(status int, err error)
	KubernetesError func(op string, err error)
	// Public, when set, builds the handler of the public listener
	// (web.listen: status page, API, metrics, health). It is called when
	// this instance starts to act (at once without leader election), once
	// the store is open and the scheduler exists, before the scheduler
	// runs. The listener serves from the start: until then, and once the
	// scheduler has stopped, /healthz answers 200 and every other path
	// 503 saying why (standby, starting, stopping).
	Public func(Daemon) (http.Handler, error)
	// Started, when set, is called with the listeners' addresses once
	// they listen (tests and the demo use it with port 0).
	Started func(Addrs)
}

// Daemon is what the public handler may read of a running daemon.
type Daemon struct {
	Scheduler *Scheduler
	Store     *store.Store
	// IsLeader reports whether this instance is the one acting: it holds
	// the Lease (always, without leader election) and has not begun to
	// stop. It turns false as soon as the Lease is lost.
	IsLeader func() bool
	// Kubernetes checks that the Kubernetes API answers.
	Kubernetes func(ctx context.Context) error
}

// Addrs are the addresses Serve listens on.
type Addrs struct {
	Public, Internal string
}

// streamEventTypes are the event types the daemon asks Gerrit for besides
// those the pipelines' triggers name: the ones that change what a queue
// item may do (dequeue, re-enqueue) or invalidate cached project config.
// patchset-created is among them even when no trigger names it: a new
// patchset dequeues the items of the old one.
var streamEventTypes = []string{
	"change-abandoned", "change-merged", "change-restored", "patchset-created",
	"wip-state-changed", "private-state-changed", "ref-updated",
}

// EventTypes returns the stream-events filter for cfg: every event type a
// trigger of a pipeline names, plus streamEventTypes, sorted and unique.
func EventTypes(cfg *pipeline.Config) []string {
	types := slices.Clone(streamEventTypes)
	for _, p := range cfg.Pipelines {
		for _, t := range p.Trigger {
			types = append(types, t.Event...)
		}
	}
	slices.Sort(types)
	return slices.Compact(types)
}

// Serve runs the daemon described by cfg until ctx ends: the Gerrit REST
// client and event stream, the merger and its internal git endpoint, the
// Argo adapter, the store and the scheduler, and every housekeeping
// interval the merger's Keep and Maintain. On ctx's end the scheduler
// finishes its turn and persists, then the servers and the store are
// closed; Serve returns nil after a clean stop.
//
// # Leader election
//
// With leader-election enabled, the listeners serve at once (health only:
// see notActing) and the instance campaigns for the Lease. Everything that
// acts or holds local state is started only once it leads, in this order:
// the term is checked against the database (claimStore), then the merger,
// the store, the Argo adapter, the scheduler, the handlers of the
// listeners, the event stream and housekeeping; a standby opens neither
// the database nor the git mirrors and talks to neither Gerrit nor Argo.
// On ctx's end the scheduler stops and persists, and only then is the
// Lease released, so that the standby takes over within a retry-period
// and never while this instance still acts. When the Lease cannot be
// renewed, the scheduler stops the same way (bounded by its shutdown
// grace, which must fit in lease-duration - renew-deadline - retry-period)
// and Serve returns an error matching ErrLeaseLost: the process exits and
// its orchestrator restarts it as a standby.
//
// What a new leader recovers, and what it does not, is described at
// claimStore.
func Serve(ctx context.Context, cfg *Config, opts ServeOptions) (err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	d := &daemon{cfg: cfg, opts: opts, log: log}
	if d.engine, err = pipeline.NewEngine(&cfg.Config); err != nil {
		return err
	}

	// Gerrit.
	d.client, err = gerrit.NewClient(gerrit.ClientConfig{
		URL:          cfg.Gerrit.URL,
		User:         cfg.Gerrit.User,
		PasswordFile: cfg.Gerrit.HTTPPasswordFile,
		Logger:       log.With("component", "gerrit-rest"),
		OnResponse:   opts.GerritResponse,
	})
	if err != nil {
		return err
	}
	if d.signer, err = gerrit.LoadSigner(cfg.Gerrit.SSHKeyFile); err != nil {
		return err
	}
	if d.hostKeys, err = gerrit.KnownHosts(cfg.Gerrit.KnownHostsFile); err != nil {
		return err
	}

	// Kubernetes.
	if d.wfClient, d.nsClient, err = kubeClients(cfg, opts); err != nil {
		return err
	}
	var el *elector
	if cfg.LeaderElection.Enabled {
		if el, err = serveElector(cfg, opts, log.With("component", "leader-election")); err != nil {
			return err
		}
	} else if err := forgetTerm(cfg.StateDir); err != nil {
		return err
	}
	le := cfg.LeaderElection
	status := func() string {
		switch {
		case d.stopping.Load():
			return "stopping"
		case el == nil || el.isLeader():
			return "starting"
		case el.leader() != "":
			return fmt.Sprintf("standby: %q leads (Lease %s/%s)", el.leader(), le.Namespace, le.Name)
		}
		return fmt.Sprintf("standby: no leader yet (Lease %s/%s)", le.Namespace, le.Name)
	}

	// The listeners serve from the start, with handlers that change when
	// this instance acts: the internal git endpoint and, when a handler
	// is given, the public one.
	d.internal = newHandlerSwitch(notActing(status))
	listeners := []listener{{"web.internal-listen", cfg.Web.InternalListen, d.internal}}
	if opts.Public != nil {
		d.public = newHandlerSwitch(notActing(status))
		listeners = append(listeners, listener{"web.listen", cfg.Web.Listen, d.public})
	}
	addrs, shutdown, err := serveHTTP(log, listeners)
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
		defer scancel()
		shutdown(sctx)
	}()
	if err != nil {
		return err
	}
	d.addrs = Addrs{Internal: addrs[0]}
	if len(addrs) > 1 {
		d.addrs.Public = addrs[1]
	}
	if opts.Started != nil {
		opts.Started(d.addrs)
	}

	if el == nil {
		err = d.lead(ctx, func() bool { return !d.stopping.Load() })
	} else {
		err = el.run(ctx, func(ctx context.Context) error {
			t, err := el.term(ctx)
			if err != nil {
				return err
			}
			if err := claimStore(cfg.StateDir, t, log); err != nil {
				return err
			}
			return d.lead(ctx, el.isLeader)
		})
	}
	log.Info("seakeeper stopped", "err", err)
	return err
}

// listener is an HTTP listener of the daemon.
type listener struct {
	name, addr string
	h          http.Handler
}

// serveHTTP serves each listener in a goroutine and returns their
// addresses, and a function that shuts the servers down (closing them
// when ctx ends first) and waits for them. On error, the servers started
// must still be shut down.
func serveHTTP(log *slog.Logger, listeners []listener) ([]string, func(ctx context.Context), error) {
	var addrs []string
	var servers sync.WaitGroup
	var running []*http.Server
	shutdown := func(ctx context.Context) {
		for _, srv := range running {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		}
		servers.Wait()
	}
	for _, l := range listeners {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return nil, shutdown, fmt.Errorf("%s: %w", l.name, err)
		}
		addrs = append(addrs, ln.Addr().String())
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 30 * time.Second}
		running = append(running, srv)
		servers.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server failed", "listener", l.name, "err", err)
			}
		})
	}
	return addrs, shutdown, nil
}

// daemon is what Serve prepares before it acts.
type daemon struct {
	cfg      *Config
	opts     ServeOptions
	log      *slog.Logger
	engine   *pipeline.Engine
	client   *gerrit.Client
	signer   ssh.Signer
	hostKeys ssh.HostKeyCallback
	wfClient versioned.Interface
	nsClient corev1client.NamespaceInterface

	internal, public *handlerSwitch // public: nil without ServeOptions.Public
	addrs            Addrs
	stopping         atomic.Bool
}

// lead acts until ctx ends: it opens the merger and the store, starts the
// Argo adapter, the scheduler, the listeners' handlers, the event stream
// and housekeeping, and runs the scheduler.
func (d *daemon) lead(ctx context.Context, isLeader func() bool) (err error) {
	cfg, log := d.cfg, d.log
	defer d.stopping.Store(true)
	if err := ctx.Err(); err != nil {
		return nil // stopped before it began
	}

	// Merger.
	m, err := merger.New(merger.Config{
		Dir:          filepath.Join(cfg.StateDir, "git"),
		Source:       func(project string) string { return cfg.Gerrit.URL + "a/" + project },
		User:         cfg.Gerrit.User,
		PasswordFile: cfg.Gerrit.HTTPPasswordFile,
		Policy:       submitPolicy(d.client),
		Logger:       log.With("component", "merger"),
	})
	if err != nil {
		return err
	}

	// Store: opened last of the local resources, closed last.
	st, err := store.Open(filepath.Join(cfg.StateDir, dbFileName), store.Options{NoSync: d.opts.NoSync})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	// Everything below stops with runCtx.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Argo.
	names := make([]string, len(cfg.Pipelines))
	for i, p := range cfg.Pipelines {
		names[i] = p.Name
	}
	configs := argo.NewConfigCache(configSource{d.client}, argo.ConfigCacheOptions{
		Pipelines: names,
		NotFound:  func(err error) bool { return errors.Is(err, gerrit.ErrNotFound) },
	})
	internalURL := cfg.Web.InternalURL
	if strings.Contains(internalURL, HostnamePlaceholder) {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("web.internal-url names %s but the host name is unknown: %w", HostnamePlaceholder, err)
		}
		internalURL = cfg.Web.InternalURLOf(host)
	}
	adapter, err := argo.New(argo.Options{
		NamespaceClient: d.nsClient,
		Client:          d.wfClient,
		Configs:         configs,
		Render: argo.RenderOptions{
			NamespaceTemplate: cfg.Kubernetes.Namespace,
			InternalURL:       internalURL,
			TTL:               cfg.Kubernetes.TTL,
		},
		ArgoURL:      cfg.Kubernetes.ArgoURL,
		MaxWorkflows: cfg.Kubernetes.MaxWorkflows,
		Namespaced:   d.opts.Namespaced,
		Log:          log.With("component", "argo"),
		OnAPIError:   d.opts.KubernetesError,
	})
	if err != nil {
		return err
	}
	if err := adapter.Start(runCtx); err != nil {
		return fmt.Errorf("argo: %w", err)
	}

	guard := newPrepareGuard(m)
	sched, err := New(Options{
		Engine:       d.engine,
		Store:        st,
		Gerrit:       d.client,
		Merger:       guard,
		Builds:       adapter,
		Logger:       log.With("component", "scheduler"),
		SettleDelay:  d.opts.SettleDelay,
		StatusURL:    cfg.Web.PublicURL,
		Observer:     d.opts.Observer,
		TickInterval: cfg.TickInterval,
	})
	if err != nil {
		return err
	}

	// The listeners' handlers, until the scheduler has stopped; requests
	// under way end before the store closes.
	mux := http.NewServeMux()
	mux.Handle("/git/", m.Handler())
	if d.public != nil {
		h, err := d.opts.Public(Daemon{
			Scheduler: sched,
			Store:     st,
			IsLeader:  isLeader,
			Kubernetes: func(context.Context) error {
				_, err := d.wfClient.Discovery().ServerVersion()
				return err
			},
		})
		if err != nil {
			return err
		}
		d.public.set(h, 0)
		defer d.release(d.public, "web.listen")
	}
	d.internal.set(mux, 0)
	defer d.release(d.internal, "web.internal-listen")

	// The event stream; ref-updated of refs/meta/config refreshes the
	// project's cached seakeeper.yaml before the scheduler sees it.
	stream := gerrit.StreamConfig{
		Addr:            cfg.Gerrit.SSH,
		User:            cfg.Gerrit.User,
		Signer:          d.signer,
		HostKeyCallback: d.hostKeys,
		EventTypes:      EventTypes(&cfg.Config),
		Logger:          log.With("component", "gerrit-stream"),
	}.Run(runCtx)
	events := make(chan gerrit.StreamItem)
	go func() {
		defer close(events)
		for it := range stream {
			if ev := it.Event; ev != nil && ev.Type == "ref-updated" && ev.RefUpdate != nil &&
				ev.RefUpdate.RefName == "refs/meta/config" {
				configs.Invalidate(string(ev.RefUpdate.Project))
			}
			select {
			case events <- it:
			case <-runCtx.Done():
				// Drain: the stream closes its channel once runCtx ended.
			}
		}
	}()

	// Housekeeping.
	hk := &housekeeper{clock: clock.System{}, every: cfg.HousekeepingInterval, guard: guard, merger: m,
		snapshot: sched.Snapshot, log: log.With("component", "housekeeping")}
	var background sync.WaitGroup
	background.Go(func() { hk.run(runCtx) })
	defer background.Wait()

	log.Info("seakeeper serving", "gerrit", cfg.Gerrit.URL, "ssh", cfg.Gerrit.SSH,
		"internal_listen", d.addrs.Internal, "listen", d.addrs.Public, "pipelines", names)
	err = sched.Run(runCtx, events)
	cancel()
	return err
}

// release puts back the not-acting handler of a listener once the
// scheduler has stopped, and waits for the requests under way.
func (d *daemon) release(s *handlerSwitch, name string) {
	d.stopping.Store(true)
	if !s.set(notActing(func() string { return "stopping" }), d.opts.ShutdownTimeout) {
		d.log.Warn("requests still under way after the shutdown timeout", "listener", name)
	}
}

// configSource reads seakeeper.yaml from Gerrit for the config cache.
type configSource struct{ c *gerrit.Client }

func (s configSource) ConfigFile(ctx context.Context, project, path string) ([]byte, string, error) {
	return s.c.ProjectConfigFile(ctx, project, path)
}

// submitPolicy returns the merger's Policy function: each project's submit
// type and content-merge flag as Gerrit reports them.
func submitPolicy(c *gerrit.Client) func(ctx context.Context, project string) (merger.Policy, error) {
	return func(ctx context.Context, project string) (merger.Policy, error) {
		typ, contentMerge, err := c.ProjectSubmitPolicy(ctx, project)
		if err != nil {
			return merger.Policy{}, err
		}
		return merger.Policy{Type: merger.SubmitType(typ), NoContentMerge: !contentMerge}, nil
	}
}
