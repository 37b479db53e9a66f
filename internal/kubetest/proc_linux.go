//go:build linux

package kubetest

import (
	"os"
	"syscall"
)

// sysProcAttr puts a child in a process group of its own, so that killing
// the group also kills anything it started, and has the kernel kill it if
// the test binary dies first (a test timeout panics and exits without
// running cleanups).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killTree kills the process group led by p.
func killTree(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}
