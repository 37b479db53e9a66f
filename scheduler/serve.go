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
	restCfg := opts.RestConfig
	if restCfg == nil {
		if restCfg, err = kubeConfig(cfg.Kubernetes.Kubeconfig); err != nil {
			return err
		}
	}
	wfClient, err := versioned.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes: %w", err)
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
	var nsClient corev1client.NamespaceInterface
	if cfg.Kubernetes.CreateNamespaces {
		kc, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return fmt.Errorf("kubernetes: %w", err)
		}
		nsClient = kc.CoreV1().Namespaces()
	}
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

	// The internal git endpoint.
	ln, err := net.Listen("tcp", cfg.Web.InternalListen)
	if err != nil {
		return fmt.Errorf("web.internal-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/git/", m.Handler())
	internal := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	var servers sync.WaitGroup
	servers.Add(1)
	go func() {
		defer servers.Done()
		if err := internal.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("internal server failed", "err", err)
		}
	}()
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
		defer scancel()
		if err := internal.Shutdown(sctx); err != nil {
			internal.Close()
		}
		servers.Wait()
	}()

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

	sched, err := New(Options{
		Engine:      engine,
		Store:       st,
		Gerrit:      client,
		Merger:      m,
		Builds:      adapter,
		Logger:      log.With("component", "scheduler"),
		SettleDelay: opts.SettleDelay,
		StatusURL:   cfg.Web.PublicURL,
	})
	if err != nil {
		return err
	}
	log.Info("seakeeper serving", "gerrit", cfg.Gerrit.URL, "ssh", cfg.Gerrit.SSH,
		"internal_listen", ln.Addr().String(), "pipelines", names)
	err = sched.Run(runCtx, events)
	cancel()
	log.Info("seakeeper stopped", "err", err)
	return err
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
