//go:build !unix

package main

import "os/exec"

func newProcessGroup(*exec.Cmd) {}

// killProcessGroup kills cmd only: there are no process groups here.
func killProcessGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
