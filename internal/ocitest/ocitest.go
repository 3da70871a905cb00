// Package ocitest gives tests the real parts of the supply chain: a real
// OCI registry (Debian's docker-registry, the CNCF distribution) started
// on 127.0.0.1 with a temporary storage directory, and the real cosign
// CLI. Both are installed by .ci/run; without them a test is skipped on a
// developer's machine and fails when CI=true.
package ocitest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// RegistryBinary is Debian's docker-registry (apt-get install docker-registry).
const RegistryBinary = "docker-registry"

// missing skips the test, or fails it in CI, for a tool that is not installed.
func missing(tb testing.TB, what, install string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not installed: .ci/run installs it (%s)", what, install)
	}
	tb.Skipf("%s is not installed (%s); CI runs this test", what, install)
}

// Registry is a running registry process.
type Registry struct {
	// Host is "127.0.0.1:<port>": the registry's address in references.
	Host string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

var (
	sharedMu  sync.Mutex
	sharedReg *Registry
	sharedErr error
)

// SharedRegistry is the registry of this test binary, started on the first
// call (Stop it from TestMain). Tests share it: each should push under its
// own repository name (RepoName).
func SharedRegistry(tb testing.TB) *Registry {
	tb.Helper()
	if _, err := exec.LookPath(RegistryBinary); err != nil {
		missing(tb, "the OCI registry "+RegistryBinary, "apt-get install docker-registry")
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedReg == nil && sharedErr == nil {
		sharedReg, sharedErr = StartRegistry()
	}
	if sharedErr != nil {
		tb.Fatalf("starting %s: %v", RegistryBinary, sharedErr)
	}
	return sharedReg
}

// StopShared stops the shared registry, if one was started.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedReg != nil {
		sharedReg.Stop()
		sharedReg = nil
	}
}

var listening = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// StartRegistry starts a registry on 127.0.0.1 with a fresh storage
// directory. It returns once the registry has said where it listens (the
// process writes it after the listener is open, so no wait is needed).
func StartRegistry() (*Registry, error) {
	bin, err := exec.LookPath(RegistryBinary)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hall-registry")
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: hall-test-registry
`, filepath.Join(dir, "data"))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	setDeathSignal(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r := &Registry{dir: dir, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			if !found {
				if m := listening.FindStringSubmatch(sc.Text()); m != nil {
					found = true
					addr <- m[1]
					continue
				}
				if log.Len() < 4096 {
					log.WriteString(sc.Text() + "\n")
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		if !found {
			close(addr)
		}
	}()
	go func() { r.err = cmd.Wait(); close(r.done) }()
	a, ok := <-addr
	if !ok {
		<-r.done
		os.RemoveAll(dir)
		return nil, fmt.Errorf("the registry exited before listening (%v): %s", r.err, log.String())
	}
	r.Host = a
	return r, nil
}

// Stop ends the registry and removes its storage.
func (r *Registry) Stop() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
	}
	<-r.done
	os.RemoveAll(r.dir)
}

// RepoName is a repository name unique to the test (lower case, as OCI
// requires).
func RepoName(tb testing.TB) string {
	n := strings.ToLower(tb.Name())
	n = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(n, "-")
	return "t/" + strings.Trim(n, "-")
}

// CosignVersion is the cosign release the tests are written against
// (.ci/run installs it with go install).
const CosignVersion = "v3.1.3"

// Cosign returns the path of the cosign CLI: on PATH, else in
// $(go env GOPATH)/bin (where go install puts it).
func Cosign(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	for _, dir := range []string{os.Getenv("GOBIN"), filepath.Join(os.Getenv("GOPATH"), "bin"), filepath.Join(home, "go", "bin")} {
		if dir == "" || dir == "bin" {
			continue
		}
		p := filepath.Join(dir, "cosign")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	missing(tb, "cosign", "go install github.com/sigstore/cosign/v3/cmd/cosign@"+CosignVersion)
	return ""
}

// RunCosign runs cosign with args in dir, with an empty password for its
// key files and no network but loopback (offline flags are the caller's),
// and returns its combined output.
func RunCosign(tb testing.TB, dir string, args ...string) (string, error) {
	tb.Helper()
	cmd := exec.Command(Cosign(tb), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+filepath.Join(dir, ".sigstore-tuf"),
		"HOME="+dir, "DOCKER_CONFIG="+filepath.Join(dir, ".docker"))
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), err
}
