package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// pathErr finds "op PATH: reason" in a worker's error: what Go's os
// package reports for a failed file operation. Compiled on first use (a
// worker failure), not at the start of every hall process.
var pathErr = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)\b(open|stat|lstat|mkdir|create|remove|rename|write|read|readdir|chmod|truncate) (/[^:\s]*): (bad file number|bad file descriptor|no such file or directory|read-only file system|permission denied|operation not permitted)`)
})

// workerErrorHints names the fix of a worker failure that comes from its
// privilege envelope: a path outside the directories it declared (Go's
// wasip1 runtime reports one as "bad file number"), a write into a
// read-only directory.
func workerErrorHints(c *cli.Context, workerID string, err error) []string {
	if err == nil {
		return nil
	}
	var env *wcp.PrivilegeEnvelope
	if h, _ := c.App.Metadata["hall"].(*host.Hall); h != nil {
		if rec, ok := h.Registry().Record(workerID); ok {
			env = rec.PrivilegeEnvelope
		}
	}
	if env == nil {
		env = &wcp.PrivilegeEnvelope{}
	}
	var hints []string
	for _, m := range pathErr().FindAllStringSubmatch(err.Error(), -1) {
		path, reason := m[2], strings.ToLower(m[3])
		writes, reads := under(path, env.FilesystemWrites), under(path, env.FilesystemReads)
		switch {
		case reads && !writes && (reason == "read-only file system" || reason == "bad file number" || reason == "permission denied"):
			hints = append(hints, fmt.Sprintf("%s is in privilege_envelope.filesystem_reads, which the sandbox mounts read-only; to write it, declare its directory in privilege_envelope.filesystem_writes (hall build --write-dir DIR) and enroll again", path))
		case !reads && !writes:
			hints = append(hints, fmt.Sprintf("%s is outside the worker's sandbox: only privilege_envelope.filesystem_writes %s (read-write) and filesystem_reads %s (read-only) exist there; declare its directory (hall build --write-dir DIR or --read-dir DIR) and enroll again", path, list(env.FilesystemWrites), list(env.FilesystemReads)))
		}
	}
	return hints
}

func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if rel, err := filepath.Rel(d, path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

func list(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	return "[" + strings.Join(s, ", ") + "]"
}
