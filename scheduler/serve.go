package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit"
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
	// Public, when set, builds the handler of the public listener
	// (web.listen: status page, API, metrics, health). It is called once
	// the store is open and the scheduler exists, before anything runs.
	Public func(Daemon) (http.Handler, error)
	// Started, when set, is called with the listeners' addresses once
	// they listen (tests and the demo use it with port 0).
	Started func(Addrs)
}

// Daemon is what the public handler may read of a running daemon.
type Daemon struct {
	Scheduler *Scheduler
	Store     *store.Store
	// IsLeader reports whether this instance is the one acting (always
	// true without leader election).
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
var streamEventTypes = []string{
	"change-abandoned", "change-merged", "change-restored",
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
// Argo adapter, the store and the scheduler. On ctx's end the scheduler
// finishes its turn and persists, then the servers and the store are
// closed; Serve returns nil after a clean stop.
func Serve(ctx context.Context, cfg *Config, opts ServeOptions) (err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}

	engine, err := pipeline.NewEngine(&cfg.Config)
	if err != nil {
		return err
	}

	// Gerrit.
	client, err := gerrit.NewClient(gerrit.ClientConfig{
		URL:          cfg.Gerrit.URL,
		User:         cfg.Gerrit.User,
		PasswordFile: cfg.Gerrit.HTTPPasswordFile,
		Logger:       log.With("component", "gerrit-rest"),
	})
	if err != nil {
		return err
	}
	signer, err := gerrit.LoadSigner(cfg.Gerrit.SSHKeyFile)
	if err != nil {
		return err
	}
	hostKeys, err := gerrit.KnownHosts(cfg.Gerrit.KnownHostsFile)
	if err != nil {
		return err
	}

	// Kubernetes.
	wfClient, nsClient, err := kubeClients(cfg, opts)
	if err != nil {
		return err
	}

	// Merger.
	m, err := merger.New(merger.Config{
		Dir:          filepath.Join(cfg.StateDir, "git"),
		Source:       func(project string) string { return cfg.Gerrit.URL + "a/" + project },
		User:         cfg.Gerrit.User,
		PasswordFile: cfg.Gerrit.HTTPPasswordFile,
		Policy:       submitPolicy(client),
		Logger:       log.With("component", "merger"),
	})
	if err != nil {
		return err
	}

	// Store: opened last of the local resources, closed last.
	st, err := store.Open(filepath.Join(cfg.StateDir, "seakeeper.db"), store.Options{NoSync: opts.NoSync})
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
	configs := argo.NewConfigCache(configSource{client}, argo.ConfigCacheOptions{
		Pipelines: names,
		NotFound:  func(err error) bool { return errors.Is(err, gerrit.ErrNotFound) },
	})
	adapter, err := argo.New(argo.Options{
		NamespaceClient: nsClient,
		Client:          wfClient,
		Configs:         configs,
		Render: argo.RenderOptions{
			NamespaceTemplate: cfg.Kubernetes.Namespace,
			InternalURL:       cfg.Web.InternalURL,
			TTL:               cfg.Kubernetes.TTL,
		},
		ArgoURL:      cfg.Kubernetes.ArgoURL,
		MaxWorkflows: cfg.Kubernetes.MaxWorkflows,
		Namespaced:   opts.Namespaced,
		Log:          log.With("component", "argo"),
	})
	if err != nil {
		return err
	}
	if err := adapter.Start(runCtx); err != nil {
		return fmt.Errorf("argo: %w", err)
	}

	sched, err := New(Options{
		Engine:      engine,
		Store:       st,
		Gerrit:      client,
		Merger:      m,
		Builds:      adapter,
		Logger:      log.With("component", "scheduler"),
		SettleDelay: opts.SettleDelay,
		StatusURL:   cfg.Web.PublicURL,
		Observer:    opts.Observer,
	})
	if err != nil {
		return err
	}

	// The listeners: the internal git endpoint and, when a handler is
	// given, the public one.
	mux := http.NewServeMux()
	mux.Handle("/git/", m.Handler())
	handlers := []struct {
		name, addr string
		h          http.Handler
	}{{"web.internal-listen", cfg.Web.InternalListen, mux}}
	if opts.Public != nil {
		h, err := opts.Public(Daemon{
			Scheduler: sched,
			Store:     st,
			IsLeader:  func() bool { return true },
			Kubernetes: func(context.Context) error {
				_, err := wfClient.Discovery().ServerVersion()
				return err
			},
		})
		if err != nil {
			return err
		}
		handlers = append(handlers, struct {
			name, addr string
			h          http.Handler
		}{"web.listen", cfg.Web.Listen, h})
	}
	var addrs []string
	var servers sync.WaitGroup
	var running []*http.Server
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
		defer scancel()
		for _, srv := range running {
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
		}
		servers.Wait()
	}()
	for _, hd := range handlers {
		ln, err := net.Listen("tcp", hd.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", hd.name, err)
		}
		addrs = append(addrs, ln.Addr().String())
		srv := &http.Server{Handler: hd.h, ReadHeaderTimeout: 30 * time.Second}
		running = append(running, srv)
		servers.Add(1)
		go func() {
			defer servers.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server failed", "listener", hd.name, "err", err)
			}
		}()
	}
	listening := Addrs{Internal: addrs[0]}
	if len(addrs) > 1 {
		listening.Public = addrs[1]
	}

	// The event stream; ref-updated of refs/meta/config refreshes the
	// project's cached seakeeper.yaml before the scheduler sees it.
	stream := gerrit.StreamConfig{
		Addr:            cfg.Gerrit.SSH,
		User:            cfg.Gerrit.User,
		Signer:          signer,
		HostKeyCallback: hostKeys,
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

	log.Info("seakeeper serving", "gerrit", cfg.Gerrit.URL, "ssh", cfg.Gerrit.SSH,
		"internal_listen", listening.Internal, "listen", listening.Public, "pipelines", names)
	if opts.Started != nil {
		opts.Started(listening)
	}
	err = sched.Run(runCtx, events)
	cancel()
	log.Info("seakeeper stopped", "err", err)
	return err
}

// kubeClients returns the Argo clientset and, when project namespaces are
// to be created, the namespace client.
func kubeClients(cfg *Config, opts ServeOptions) (versioned.Interface, corev1client.NamespaceInterface, error) {
	if opts.Workflows != nil {
		ns := opts.Namespaces
		if !cfg.Kubernetes.CreateNamespaces {
			ns = nil
		}
		return opts.Workflows, ns, nil
	}
	restCfg := opts.RestConfig
	if restCfg == nil {
		var err error
		if restCfg, err = kubeConfig(cfg.Kubernetes.Kubeconfig); err != nil {
			return nil, nil, err
		}
	}
	wf, err := versioned.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	if !cfg.Kubernetes.CreateNamespaces {
		return wf, nil, nil
	}
	kc, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	return wf, kc.CoreV1().Namespaces(), nil
}

// kubeConfig loads the kubeconfig at path, or the in-cluster credentials
// when path is empty.
func kubeConfig(path string) (*rest.Config, error) {
	var (
		c   *rest.Config
		err error
	)
	if path == "" {
		c, err = rest.InClusterConfig()
	} else {
		c, err = clientcmd.BuildConfigFromFlags("", path)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return c, nil
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
