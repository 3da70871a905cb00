//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// newProcessGroup makes cmd the leader of a process group of its own.
func newProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killProcessGroup kills cmd and whatever it left running in its group.
func killProcessGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
