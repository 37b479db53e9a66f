//go:build unix

package argolocal

// This file starts a node's process in a process group of its own and kills
// the whole group, as stopping a container would.

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
)

// runProcess runs p until it exits or ctx is done, when it kills p's process
// group. It returns the exit code (128+signal for a signal) or why p could
// not run. Whatever p left running in its group is killed when it exits.
func runProcess(ctx context.Context, p *process) (int, error) {
	cmd := &exec.Cmd{
		Path: p.path, Args: p.argv, Dir: p.dir, Env: p.env,
		Stdout: p.log, Stderr: p.log,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		case <-exited:
		}
	}()
	err := cmd.Wait()
	close(exited)
	<-killed
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}
