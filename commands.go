package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/seakeeper-ci/seakeeper/scheduler"
)

func versionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of seakeeper and of the Go toolchain that built it",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(stdout, "seakeeper %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

func checkConfigCommand(stdout, stderr io.Writer) *cobra.Command {
	var reach bool
	cmd := &cobra.Command{
		Use:   "check-config FILE",
		Short: "Check a main configuration file and report every problem as file:line: message",
		Long: `check-config reads a main configuration file the way the daemon does and
reports every problem at once, one per line as "file:line: path: message",
sorted by line. It exits 0 when the file is valid and 1 otherwise. It reads
nothing but FILE: the key and password files it names are not opened.

With --reach it then connects to what the file names, with the credentials it
names, and prints one line per check, "NAME: ok: ..." or "NAME: FAILED:
reason": Gerrit's REST API (the account of the HTTP password), Gerrit's SSH
daemon (host key against known_hosts, client key, a short stream-events
session), the Kubernetes API, the Argo Workflow CRD, and the permissions the
daemon needs there. It changes nothing, and exits 1 if any check fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := scheduler.LoadConfig(args[0])
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitCode(1)
			}
			fmt.Fprintf(stdout, "%s: ok: %d pipelines, %d shared queues\n", args[0], len(c.Pipelines), len(c.Queues))
			if reach && !scheduler.PrintChecks(stdout, scheduler.Reach(cmd.Context(), c, scheduler.ReachOptions{})) {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&reach, "reach", false, "also connect to Gerrit and Kubernetes with the configured credentials")
	return cmd
}

func serveCommand(stderr io.Writer) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the daemon against the Gerrit and Kubernetes named in the configuration",
		Long: `serve runs the gating daemon: it reads Gerrit's event stream, prepares
speculative git states, runs Argo Workflows and reports back to Gerrit. It logs
JSON lines to stderr and stops cleanly on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile == "" {
				return fmt.Errorf("serve: --config FILE is required")
			}
			cfg, err := scheduler.LoadConfig(configFile)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitCode(1)
			}
			if cfg.LeaderElection.Identity == "" {
				// A StatefulSet's pod name; Serve falls back to the host name.
				cfg.LeaderElection.Identity = os.Getenv("POD_NAME")
			}
			log := slog.New(slog.NewJSONHandler(stderr, nil))
			slog.SetDefault(log)
			klog.SetSlogLogger(log.With("component", "client-go"))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts, err := withWeb(cfg, scheduler.ServeOptions{Logger: log})
			if err != nil {
				log.Error("seakeeper serve failed", "err", err)
				return exitCode(1)
			}
			if err := scheduler.Serve(ctx, cfg, opts); err != nil {
				log.Error("seakeeper serve failed", "err", err)
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "the main configuration file")
	return cmd
}

// notYetCommand is a command whose implementation arrives with a later
// issue; it exits with code.
func notYetCommand(name, short string, code int, out io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short + " (not yet implemented)",
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(out, "not yet: arrives with a later issue")
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}
