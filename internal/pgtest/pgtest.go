// Package pgtest starts a real PostgreSQL server for tests: Debian's
// postgresql package (initdb and pg_ctl), in a temporary directory,
// listening on a unix socket only (no TCP port), once per test binary.
// Each test gets a fresh database of its own.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.NewDatabase(t) // host=/tmp/... user=postgres dbname=t_3
//		...
//	}
//
// # Notes
//
//   - Without PostgreSQL's binaries a test calling NewDatabase is skipped,
//     and fails when the environment has CI=true (.ci/run installs the
//     postgresql package).
//   - Run as root (CI), the server runs as the postgres user the Debian
//     package creates (PostgreSQL refuses to run as root), through
//     runuser; otherwise as the current user.
//   - The server is stopped and its directory removed by Main after the
//     tests; a test binary without Main leaves it to the operating system
//     (pg_ctl's server exits when its directory is removed at reboot).
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Server is a running test PostgreSQL server.
type Server struct {
	// Dir holds the cluster (Dir/data) and the socket directory
	// (Dir/sock).
	Dir string
	// SocketDir is the unix socket's directory (a DSN's host=).
	SocketDir string
	bin       string
	asUser    string // "postgres" when run as root
	opts      string // the server's -o options
}

var (
	once    sync.Once
	srv     *Server
	srvErr  error
	skipMsg string
	nextDB  atomic.Int64
)

// BinDir returns the directory of PostgreSQL's server binaries (initdb,
// pg_ctl): the newest /usr/lib/postgresql/*/bin, else the PATH's.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL is not installed: no initdb under /usr/lib/postgresql/*/bin or on PATH (apt-get install -y postgresql)")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start starts the binary's shared server once and returns it. It fails
// (or, outside CI, skips) t when PostgreSQL is missing or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		if skipMsg != "" && os.Getenv("CI") != "true" {
			t.Skipf("%s; CI runs this test", skipMsg)
		}
		t.Fatalf("pgtest: %v", srvErr)
	}
	return srv
}

func start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		skipMsg = err.Error()
		return nil, err
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			skipMsg = "running as root and there is no postgres user to run PostgreSQL as (the postgresql package creates it)"
			return nil, errors.New(skipMsg)
		}
		s.asUser = "postgres"
	}
	base := "" // $TMPDIR
	if s.asUser != "" {
		// The postgres user must reach the directory: /tmp, not a TMPDIR
		// under root's home. A short path also keeps the socket's under
		// the 107 bytes a unix socket path may have.
		base = "/tmp"
	}
	if s.Dir, err = os.MkdirTemp(base, "hallpg"); err != nil {
		return nil, err
	}
	s.SocketDir = filepath.Join(s.Dir, "sock")
	if err := os.Mkdir(s.SocketDir, 0o700); err != nil {
		return nil, err
	}
	if s.asUser != "" {
		u, _ := user.Lookup(s.asUser)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{s.Dir, s.SocketDir} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, err
			}
		}
	}
	data := filepath.Join(s.Dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	// Unix socket only; fsync off: a test cluster never survives a crash
	// of its machine (the Hall's durability tests kill hall, not Postgres).
	s.opts = fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories=%s%s -c max_connections=200", s.SocketDir, noSync)
	if out, err := s.run("pg_ctl", "-D", data, "-o", s.opts, "-l", filepath.Join(s.Dir, "log"), "-w", "-s", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return s, nil
}

// noSync are the server options of a test cluster that Durable removes.
const noSync = " -c fsync=off -c full_page_writes=off"

// run runs a PostgreSQL binary as the server's user.
func (s *Server) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.Dir
	return cmd.CombinedOutput()
}

// Stop stops the server (immediate shutdown) and removes its directory.
func (s *Server) Stop() error {
	_, err := s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "-s", "stop")
	return errors.Join(err, os.RemoveAll(s.Dir))
}

// Pause stops the server (fast shutdown: clients' connections end) and
// keeps its data; Resume starts it again. Tests of what clients do while
// the database is unreachable use them.
func (s *Server) Pause() error {
	if out, err := s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "fast", "-w", "-s", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Resume starts a paused server on the same data and socket.
func (s *Server) Resume() error {
	if out, err := s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-o", s.opts, "-l", filepath.Join(s.Dir, "log"), "-w", "-s", "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return nil
}

// Restart stops the server and starts it again on the same data (fast
// shutdown): clients see their connections end and must reconnect.
func (s *Server) Restart() error {
	data := filepath.Join(s.Dir, "data")
	if out, err := s.run("pg_ctl", "-D", data, "-m", "fast", "-w", "-s", "restart"); err != nil {
		return fmt.Errorf("pg_ctl restart: %v: %s", err, out)
	}
	return nil
}

// Durable restarts the shared server with fsync and full_page_writes on
// (PostgreSQL's defaults; the tests run without them) for the rest of the
// test binary, so that a COMMIT waits for the disk as SQLite's FULL
// synchronous commits do: benchmarks that set PostgreSQL beside SQLite
// call it before opening anything. Connections open at the time end.
func Durable(t testing.TB) {
	t.Helper()
	s := Start(t)
	durableMu.Lock()
	defer durableMu.Unlock()
	if !strings.Contains(s.opts, noSync) {
		return
	}
	if err := s.Pause(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s.opts = strings.Replace(s.opts, noSync, "", 1)
	if err := s.Resume(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

var durableMu sync.Mutex

// DSN is the keyword/value connection string of database name.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable", s.SocketDir, name)
}

// NewDatabase creates a fresh, empty database on the shared server and
// returns its DSN (keyword/value form, a unix-socket host=).
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := Start(t)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), nextDB.Add(1))
	db, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.DSN(name)
}

// Main runs the tests of m and then stops the shared server, if one was
// started; use it as TestMain's body.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the shared server, if one was started, and removes its
// directory: for a TestMain that runs m itself.
func Stop() {
	if srv != nil {
		if err := srv.Stop(); err != nil && !strings.Contains(err.Error(), "no such") {
			fmt.Fprintf(os.Stderr, "pgtest: stopping PostgreSQL: %v\n", err)
		}
		srv = nil
	}
}
