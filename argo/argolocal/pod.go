package argolocal

// This file runs a container or script template as a local process.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// defaultPath is the PATH of a process unless Config.Env or the template
// sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// A process is what runPod hands to the operating system.
type process struct {
	path string // argv[0] looked up in the PATH of env
	argv []string
	dir  string
	env  []string
	log  *os.File
}

func (e *execution) runPod(ctx context.Context, id string, tmpl *wfv1.Template, vars map[string]string) (wfv1.NodePhase, string) {
	p, cleanup, err := e.preparePod(id, tmpl, vars)
	if err != nil {
		return wfv1.NodeError, err.Error()
	}
	defer cleanup()

	if e.podSlots != nil {
		select {
		case e.podSlots <- struct{}{}:
			defer func() { <-e.podSlots }()
		case <-ctx.Done():
			return wfv1.NodeFailed, causeMessage(ctx)
		}
	}
	podCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(errFinished)
	if ads := tmpl.ActiveDeadlineSeconds; ads != nil {
		s, err := substitute(ads.String(), vars)
		if err != nil {
			return wfv1.NodeError, err.Error()
		}
		secs, err := strconv.Atoi(s)
		if err != nil {
			return wfv1.NodeError, fmt.Sprintf("activeDeadlineSeconds %q is not a number", s)
		}
		e.mu.Lock()
		started := e.status.Nodes[id].StartedAt.Time
		e.mu.Unlock()
		e.stopAt(podCtx, started.Add(time.Duration(secs)*time.Second), cancel)
	}
	if podCtx.Err() != nil {
		return wfv1.NodeFailed, causeMessage(podCtx)
	}
	e.log.Debug("starting process", "node", id, "argv", p.argv, "dir", p.dir)
	code, err := runProcess(podCtx, p)
	switch {
	case err != nil:
		return wfv1.NodeError, err.Error()
	case context.Cause(podCtx) != nil:
		return wfv1.NodeFailed, causeMessage(podCtx)
	case code != 0:
		return wfv1.NodeFailed, fmt.Sprintf("exit code %d", code)
	}
	return wfv1.NodeSucceeded, ""
}

// preparePod substitutes the template and lays out the node's directory,
// home, log and script.
func (e *execution) preparePod(id string, tmpl *wfv1.Template, vars map[string]string) (*process, func(), error) {
	var ctr corev1.Container
	var source string
	if tmpl.Script != nil {
		ctr, source = tmpl.Script.Container, tmpl.Script.Source
	} else {
		ctr = *tmpl.Container
	}
	command, err := substituteAll(ctr.Command, vars)
	if err != nil {
		return nil, nil, err
	}
	args, err := substituteAll(ctr.Args, vars)
	if err != nil {
		return nil, nil, err
	}
	workingDir, err := substitute(ctr.WorkingDir, vars)
	if err != nil {
		return nil, nil, err
	}
	if source, err = substitute(source, vars); err != nil {
		return nil, nil, err
	}
	nodeDir := filepath.Join(e.dir, id)
	home := nodeDir + ".home"
	env := []string{"PATH=" + defaultPath, "HOME=" + home}
	env = append(env, e.c.cfg.Env...)
	for _, ev := range ctr.Env {
		if ev.ValueFrom != nil {
			return nil, nil, unsupported("env valueFrom (" + ev.Name + ")")
		}
		v, err := substitute(ev.Value, vars)
		if err != nil {
			return nil, nil, err
		}
		env = append(env, ev.Name+"="+v)
	}

	for _, d := range []string{nodeDir, home} {
		if err := os.RemoveAll(d); err != nil {
			return nil, nil, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	dir := nodeDir
	if rel := strings.TrimLeft(filepath.Clean("/"+workingDir), "/"); rel != "" {
		dir = filepath.Join(nodeDir, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
	}

	argv := append(command, args...)
	if tmpl.Script != nil {
		script := nodeDir + ".script"
		if err := os.WriteFile(script, []byte(source), 0o755); err != nil {
			return nil, nil, err
		}
		if len(command) == 0 {
			argv = append([]string{"sh"}, argv...)
		}
		argv = append(argv, script)
	}
	if len(argv) == 0 {
		return nil, nil, errors.New("container has no command or args (argolocal runs commands, not images)")
	}
	path, err := lookPath(argv[0], dir, env)
	if err != nil {
		return nil, nil, err
	}
	log, err := os.Create(nodeDir + ".log")
	if err != nil {
		return nil, nil, err
	}
	return &process{path: path, argv: argv, dir: dir, env: env, log: log}, func() { _ = log.Close() }, nil
}

// lookPath finds name in the PATH of env, the last one winning as it does
// for the process, relative entries taken from dir; a name with a slash is
// taken as it is (exec takes it relative to dir).
func lookPath(name, dir string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, entry := range filepath.SplitList(path) {
		if !filepath.IsAbs(entry) {
			entry = filepath.Join(dir, entry)
		}
		p := filepath.Join(entry, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}
