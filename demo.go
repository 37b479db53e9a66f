package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/argo/argolocal"
	"github.com/seakeeper-ci/seakeeper/gerrit/gerrittest"
	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// demoFiles are the sample projects: testdata/demo/<name> is the project
// demo/<name>; its seakeeper.yaml goes on refs/meta/config, every other
// file on master (see testdata/demo/README.md).
//
//go:embed testdata/demo
var demoFiles embed.FS

const (
	demoFilesRoot = "testdata/demo"
	// demoSettle is the daemon's settle delay: short, so that the story
	// moves along, but long enough to show that events are re-read.
	demoSettle = 300 * time.Millisecond
	// demoStartTimeout bounds the daemon's start and its first stream
	// session; demoStopTimeout its stop (Serve's own bound is the
	// scheduler's shutdown grace plus a few seconds).
	demoStartTimeout = time.Minute
	demoStopTimeout  = time.Minute
)

type demoFlags struct {
	exit, keep  bool
	dir, listen string
	// pace is how long each workflow waits before it tests, so that
	// people can watch the queues on the status page.
	pace time.Duration
}

// defaultPace is the demo's pace when it runs for people (not --exit).
const defaultPace = 4 * time.Second

func demoCommand(stdout, stderr io.Writer) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run Seakeeper against a fake Gerrit and a local Argo stand-in",
		Long: `demo needs no cluster and no Gerrit. It starts a fake Gerrit on this machine
with two sample projects (demo/lib and demo/app, one shared gate queue), a
local stand-in for the Argo controller that runs workflows as plain
processes, and the daemon with the built-in configuration. Then it plays a
short story and prints what happens: uploads tested in check, approvals
gated together, a change that breaks the build once combined with another,
a recheck, a cross-project Depends-On, the merges.

After the story it keeps running, so that you can look around, until
Ctrl-C (or SIGTERM); --exit ends it right after the story. Everything lives
in a temporary directory that is removed at the end unless --keep is given.
The daemon's log is seakeeper.log in that directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// A second Ctrl-C kills the demo at once.
			context.AfterFunc(ctx, stop)
			if !cmd.Flags().Changed("pace") && !f.exit {
				f.pace = defaultPace
			}
			if f.pace < 0 {
				return fmt.Errorf("--pace must not be negative (got %s)", f.pace)
			}
			return runDemo(ctx, f, cmd.Flags().Changed("listen"), stdout, stderr)
		},
	}
	cmd.Flags().BoolVar(&f.exit, "exit", false, "stop right after the story instead of waiting for Ctrl-C")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "keep the demo's directory (repositories, database, logs, workflow outputs)")
	cmd.Flags().StringVar(&f.dir, "dir", "", "the demo's directory (default: a new temporary directory); it must be empty or not exist")
	cmd.Flags().DurationVar(&f.pace, "pace", 0,
		"how long each workflow waits before testing, to watch the status page (default 4s, 0 with --exit)")
	cmd.Flags().StringVar(&f.listen, "listen", scheduler.Default().Web.Listen,
		"the status page's address (the built-in default falls back to a free port when busy)")
	return cmd
}

// demo is what runDemo started; stop takes it down in reverse order.
type demo struct {
	dir    string
	log    *slog.Logger
	logf   *os.File
	stdLog io.Writer // package log's output before the demo
	gerrit *gerrittest.Server
	argo   *fakeArgo

	stopArgolocal context.CancelFunc
	argolocalDone chan error
	stopDaemon    context.CancelFunc
	daemonDone    chan struct{} // closed when Serve returned daemonErr
	daemonErr     error
}

// runDemo runs the demo until the story ends (--exit) or ctx ends.
func runDemo(ctx context.Context, f demoFlags, explicitListen bool, stdout, stderr io.Writer) (err error) {
	n := &narrator{out: stdout}
	d := &demo{}
	defer func() {
		if serr := d.stop(n, f.keep); serr != nil {
			fmt.Fprintf(stderr, "seakeeper demo: stopping: %v\n", serr)
			err = exitCode(1)
		}
	}()
	addrs, err := d.start(ctx, f, explicitListen, n)
	if err != nil {
		if ctx.Err() != nil {
			n.printf("\nInterrupted while starting.\n")
			return nil
		}
		fmt.Fprintf(stderr, "seakeeper demo: %v\n", err)
		return exitCode(1)
	}
	n.intro(d, addrs)

	// The story stops when the daemon does.
	storyCtx, cancelStory := context.WithCancel(ctx)
	defer cancelStory()
	go func() {
		select {
		case <-d.daemonDone:
			cancelStory()
		case <-storyCtx.Done():
		}
	}()
	started := time.Now()
	sum, err := playStory(storyCtx, d.gerrit, d.argo, n)
	switch {
	case ctx.Err() != nil:
		n.printf("\nInterrupted: the story did not finish.\n")
		return nil
	case err != nil && storyCtx.Err() != nil:
		<-d.daemonDone
		fmt.Fprintf(stderr, "seakeeper demo: the daemon stopped during the story: %v (see %s)\n", d.daemonErr, d.logf.Name())
		return exitCode(1)
	case err != nil:
		fmt.Fprintf(stderr, "seakeeper demo: %v\n(the daemon's log is %s)\n", err, d.logf.Name())
		return exitCode(1)
	}
	n.summary(sum, time.Since(started))
	if f.exit {
		return nil
	}
	n.printf("\nThe demo keeps running: look around at the URLs above. Press Ctrl-C to stop.\n")
	select {
	case <-ctx.Done():
	case <-d.daemonDone:
		fmt.Fprintf(stderr, "seakeeper demo: the daemon stopped: %v (see %s)\n", d.daemonErr, d.logf.Name())
		return exitCode(1)
	}
	return nil
}

// start brings up Gerrit, the Argo stand-in and the daemon, and waits
// until the daemon listens and reads Gerrit's event stream.
func (d *demo) start(ctx context.Context, f demoFlags, explicitListen bool, n *narrator) (scheduler.Addrs, error) {
	// The daemon's addresses: the status page's as asked, the internal
	// listener's where the built-in configuration says, or a free port.
	listen, busy, err := pickAddr(f.listen, explicitListen)
	if err != nil {
		return scheduler.Addrs{}, fmt.Errorf("--listen: %w", err)
	}
	if busy {
		n.printf("Note: %s is busy; the status page's address is %s instead.\n", f.listen, listen)
	}
	internal, _, err := pickAddr(scheduler.Default().Web.InternalListen, false)
	if err != nil {
		return scheduler.Addrs{}, fmt.Errorf("the internal listener: %w", err)
	}
	if d.dir, err = demoDir(f.dir); err != nil {
		return scheduler.Addrs{}, err
	}
	if d.logf, err = os.Create(filepath.Join(d.dir, "seakeeper.log")); err != nil {
		return scheduler.Addrs{}, err
	}
	d.log = slog.New(slog.NewJSONHandler(d.logf, nil))
	// What libraries print with package log (net/http/cgi when a fetch
	// is cut short) or klog (client-go) goes there too, not between the
	// story's lines.
	d.stdLog = log.Writer()
	log.SetOutput(d.logf)
	klog.SetSlogLogger(d.log.With("component", "client-go"))

	// Gerrit, with the sample projects and the daemon's credentials.
	gl := d.log.With("component", "gerrittest")
	if d.gerrit, err = gerrittest.New(gerrittest.Options{
		Dir:     filepath.Join(d.dir, "gerrit"),
		User:    daemonUser,
		OnEvent: n.event,
		Logf:    func(format string, args ...any) { gl.Info(fmt.Sprintf(format, args...)) },
	}); err != nil {
		return scheduler.Addrs{}, fmt.Errorf("starting the fake Gerrit: %w", err)
	}
	if _, err := d.gerrit.WriteCredentials(d.dir); err != nil {
		return scheduler.Addrs{}, err
	}
	if err := importProjects(d.gerrit, demoFiles, demoFilesRoot); err != nil {
		return scheduler.Addrs{}, err
	}

	// Argo: argolocal runs what the daemon submits to the shared fake API.
	d.argo = newFakeArgo()
	ctl, err := argolocal.New(argolocal.Config{
		Client:        d.argo,
		LabelSelector: argo.LabelBuildSet,
		WorkDir:       filepath.Join(d.dir, "workflows"),
		Env: []string{"PATH=" + os.Getenv("PATH"), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1",
			fmt.Sprintf("DEMO_PACE=%.3f", f.pace.Seconds())},
		Logger: d.log.With("component", "argolocal"),
	})
	if err != nil {
		return scheduler.Addrs{}, err
	}
	actx, acancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stopArgolocal, d.argolocalDone = acancel, make(chan error, 1)
	go func() { d.argolocalDone <- ctl.Run(actx) }()

	// The daemon.
	cfg := demoConfig(d.gerrit, d.dir, listen, internal)
	started := make(chan scheduler.Addrs, 1)
	dctx, dcancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stopDaemon, d.daemonDone = dcancel, make(chan struct{})
	go func() {
		defer close(d.daemonDone)
		opts, err := withWeb(cfg, demoServeOptions(d.log, d.argo, func(a scheduler.Addrs) { started <- a }))
		if err != nil {
			d.daemonErr = err
			return
		}
		d.daemonErr = scheduler.Serve(dctx, cfg, opts)
	}()
	timeout := time.NewTimer(demoStartTimeout)
	defer timeout.Stop()
	var addrs scheduler.Addrs
	select {
	case addrs = <-started:
	case <-d.daemonDone:
		return addrs, fmt.Errorf("the daemon did not start: %v (see %s)", d.daemonErr, d.logf.Name())
	case <-ctx.Done():
		return addrs, ctx.Err()
	case <-timeout.C:
		return addrs, fmt.Errorf("the daemon did not start within %v (see %s)", demoStartTimeout, d.logf.Name())
	}
	// Approvals given before the stream is read would only be found by
	// the resync; wait for the stream, as a user would see it connected.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for d.gerrit.SSH().Sessions() == 0 {
		select {
		case <-d.daemonDone:
			return addrs, fmt.Errorf("the daemon stopped: %v (see %s)", d.daemonErr, d.logf.Name())
		case <-ctx.Done():
			return addrs, ctx.Err()
		case <-timeout.C:
			return addrs, fmt.Errorf("the daemon did not connect to Gerrit's event stream within %v (see %s)", demoStartTimeout, d.logf.Name())
		case <-tick.C:
		}
	}
	return addrs, nil
}

// demoServeOptions are the daemon's options in the demo.
func demoServeOptions(logger *slog.Logger, workflows versioned.Interface, started func(scheduler.Addrs)) scheduler.ServeOptions {
	return scheduler.ServeOptions{
		Logger:      logger,
		SettleDelay: demoSettle,
		Workflows:   workflows,
		Started:     started,
		// withWeb adds the status page, the API and the metrics.
	}
}

// demoConfig is the built-in configuration pointed at what the demo
// started: Gerrit, the files in dir, the chosen listen addresses.
func demoConfig(g *gerrittest.Server, dir, listen, internal string) *scheduler.Config {
	cfg := scheduler.Default()
	cfg.Gerrit.URL = g.URL() + "/"
	cfg.Gerrit.SSH = g.SSHAddr()
	cfg.Gerrit.User = g.User()
	cfg.Gerrit.SSHKeyFile = filepath.Join(dir, "ssh", "id_ed25519")
	cfg.Gerrit.KnownHostsFile = filepath.Join(dir, "ssh", "known_hosts")
	cfg.Gerrit.HTTPPasswordFile = filepath.Join(dir, "http-password")
	// There is no Argo UI to link to: argolocal runs the workflows.
	cfg.Kubernetes.ArgoURL = ""
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Web.Listen, cfg.Web.PublicURL = listen, "http://"+listen
	cfg.Web.InternalListen, cfg.Web.InternalURL = internal, "http://"+internal
	return cfg
}

// stop takes down what start brought up, in reverse order, then removes
// the directory unless keep.
func (d *demo) stop(n *narrator, keep bool) error {
	var errs []error
	if d.stopDaemon != nil {
		// An error of a daemon that ended by itself was reported already.
		ended := false
		select {
		case <-d.daemonDone:
			ended = true
		default:
		}
		d.stopDaemon()
		select {
		case <-d.daemonDone:
			if d.daemonErr != nil && !ended {
				errs = append(errs, fmt.Errorf("the daemon: %w", d.daemonErr))
			}
		case <-time.After(demoStopTimeout):
			errs = append(errs, fmt.Errorf("the daemon did not stop within %v", demoStopTimeout))
		}
	}
	if d.stopArgolocal != nil {
		d.stopArgolocal()
		select {
		case err := <-d.argolocalDone:
			if err != nil {
				errs = append(errs, fmt.Errorf("argolocal: %w", err))
			}
		case <-time.After(demoStopTimeout):
			errs = append(errs, fmt.Errorf("argolocal did not stop within %v", demoStopTimeout))
		}
	}
	if d.gerrit != nil {
		if err := d.gerrit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("the fake Gerrit: %w", err))
		}
	}
	if d.logf != nil {
		klog.ClearLogger()
		log.SetOutput(d.stdLog)
		if err := d.logf.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.dir == "" {
		return errors.Join(errs...)
	}
	if keep || len(errs) > 0 {
		n.printf("\nStopped. Everything is kept in %s\n", d.dir)
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return err
	}
	n.printf("\nStopped. Removed %s\n", d.dir)
	return nil
}

// demoDir returns the demo's directory: dir, which must be empty or not
// exist, or a new temporary directory.
func demoDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "seakeeper-demo-")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return abs, os.MkdirAll(abs, 0o700)
	case err != nil:
		return "", fmt.Errorf("--dir: %w", err)
	case len(entries) > 0:
		return "", fmt.Errorf("--dir %s: the directory is not empty (the demo removes it at the end)", dir)
	}
	return abs, nil
}

// pickAddr returns the address addr listens on when it is free (port 0
// picks a free port). When it is busy, an explicit address is an error;
// otherwise a free port of the same host is chosen and busy is true.
func pickAddr(addr string, explicit bool) (_ string, busy bool, _ error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		host, _, serr := net.SplitHostPort(addr)
		if explicit || serr != nil {
			return "", false, err
		}
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			return "", false, err
		}
		busy = true
	}
	defer ln.Close()
	return ln.Addr().String(), busy, nil
}

// importProjects creates a project per directory under root of files:
// root/<name> becomes demo/<name>, its seakeeper.yaml is put on
// refs/meta/config and its other files pushed to master.
func importProjects(g *gerrittest.Server, files fs.FS, root string) error {
	entries, err := fs.ReadDir(files, root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := path.Join(root, e.Name())
		project := "demo/" + e.Name()
		content := map[string]string{}
		err := fs.WalkDir(files, dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			data, err := fs.ReadFile(files, p)
			content[strings.TrimPrefix(p, dir+"/")] = string(data)
			return err
		})
		if err != nil {
			return err
		}
		config, ok := content[argo.ConfigFileName]
		if !ok {
			return fmt.Errorf("%s: no %s: every sample project needs its project config", dir, argo.ConfigFileName)
		}
		delete(content, argo.ConfigFileName)
		if err := g.CreateProject(project, gerrittest.MergeIfNecessary); err != nil {
			return fmt.Errorf("creating %s: %w", project, err)
		}
		if _, err := g.PushToBranch(project, "master", content, "Import "+project, "admin"); err != nil {
			return fmt.Errorf("pushing the content of %s: %w", project, err)
		}
		if _, err := g.PutConfigFile(project, argo.ConfigFileName, config, "admin"); err != nil {
			return fmt.Errorf("putting %s of %s on refs/meta/config: %w", argo.ConfigFileName, project, err)
		}
	}
	return nil
}
