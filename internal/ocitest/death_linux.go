package ocitest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal ends the registry when the test binary dies, so that a
// killed test run leaves no registry behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
