package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// openPair opens the same token file twice, as `hall serve` and `hall
// tokens` do from two processes.
func openPair(t *testing.T) (server, cli *Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), DBFile)
	var err error
	if server, err = Open(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	if cli, err = Open(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return server, cli
}

// mustAuth authenticates tok twice (the second answer comes from the cache)
// and checks that the row is cached.
func mustAuth(t *testing.T, s *Store, tok string, want Token) {
	t.Helper()
	for range 2 {
		got, err := s.Authenticate(context.Background(), tok)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if got.ID != want.ID || got.Scope != want.Scope || got.Revoked() {
			t.Fatalf("Authenticate = %+v, want %+v", got, want)
		}
	}
	if !s.cached(tok) {
		t.Fatalf("%s is not cached after two successful Authenticate calls", want.ID)
	}
}

func mustFail(t *testing.T, s *Store, tok, why string) {
	t.Helper()
	if got, err := s.Authenticate(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("%s: Authenticate = %+v, %v; want ErrInvalidToken", why, got, err)
	}
}

// cached reports whether the row of tok's id is in the cache.
func (s *Store) cached(tok string) bool {
	var k tokenKey
	if _, err := hex.Decode(k[:], []byte(tok[len(tokenPrefix):len(tokenPrefix)+idHexLen])); err != nil {
		return false
	}
	_, ok, _ := s.cache.get(k)
	return ok
}

func TestCacheSeesRevocationByAnotherStore(t *testing.T) {
	server, cli := openPair(t)
	revokedElsewhere(t, server, cli, 20, "the other store")
}

// revokedElsewhere creates and revokes rounds tokens through cli, each
// authenticated by server in between (so it is in server's cache), and
// requires server to refuse each from its first call after the
// revocation: repeated, each round must see the other's write at once.
func revokedElsewhere(t *testing.T, server, cli *Store, rounds int, other string) {
	t.Helper()
	ctx := context.Background()
	for i := range rounds {
		tok, meta, err := cli.Create(ctx, TenantScope("org.acme"), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		mustAuth(t, server, tok, meta) // created after the cache was filled
		if _, err := cli.Revoke(ctx, meta.ID); err != nil {
			t.Fatal(err)
		}
		mustFail(t, server, tok, "revoked by "+other)
		mustFail(t, server, tok, "revoked by "+other+", asked again")
	}
}

func TestCacheSeesRevocationBySameStore(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	keep, keepMeta, err := s.Create(ctx, AdminScope(), "")
	if err != nil {
		t.Fatal(err)
	}
	tok, meta, err := s.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, s, keep, keepMeta)
	mustAuth(t, s, tok, meta)
	if _, err := s.Revoke(ctx, meta.ID); err != nil {
		t.Fatal(err)
	}
	mustFail(t, s, tok, "revoked by the same store")
	mustAuth(t, s, keep, keepMeta)
	// A token created by the same store after the cache was filled.
	tok2, meta2, err := s.Create(ctx, ApproverScope(""), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, s, tok2, meta2)
}

// TestCacheSeesForeignWrites: writes that do not go through this package
// (the sqlite3 shell, a restore) are seen too: the check is on the file.
func TestCacheSeesForeignWrites(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	tok, meta, err := s.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, s, tok, meta)
	raw, err := sql.Open("sqlite", "file:"+s.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	if _, err := raw.Exec(`UPDATE tokens SET scope = 'tenant:org.other' WHERE id = ?`, meta.ID); err != nil {
		t.Fatal(err)
	}
	meta.Scope = TenantScope("org.other")
	mustAuth(t, s, tok, meta)

	if _, err := raw.Exec(`DELETE FROM tokens WHERE id = ?`, meta.ID); err != nil {
		t.Fatal(err)
	}
	mustFail(t, s, tok, "deleted")
	if s.cached(tok) {
		t.Fatal("a deleted token's row is still cached")
	}
}

// TestCacheHitsSkipTheLookup: a cached token is answered without the
// lookup query (which is closed here), a new one is not.
func TestCacheHitsSkipTheLookup(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	tok, meta, err := s.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, s, tok, meta)
	s.lookup.Close()
	mustAuth(t, s, tok, meta)
	flip := []byte(tok)
	flip[len(flip)-1] ^= 1 // same id, another secret: refused from the cache
	mustFail(t, s, string(flip), "wrong secret")
	if _, err := s.Revoke(ctx, meta.ID); err == nil {
		t.Fatal("Revoke's lookup worked with the statement closed")
	}
	if _, err := s.Authenticate(ctx, tok); err == nil {
		t.Fatal("a revoked token was answered from the cache")
	}
}

// TestCacheRecoversFromALostConnection: when the check fails, the call
// reads the database, caches nothing, and the next call checks on a new
// connection.
func TestCacheRecoversFromALostConnection(t *testing.T) {
	ctx := context.Background()
	server, cli := openPair(t)
	tok, meta, err := cli.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, server, tok, meta)
	server.watch.connMu.Lock()
	server.watch.drop() // as after an error: the next check starts afresh
	server.watch.connMu.Unlock()
	mustAuth(t, server, tok, meta)

	server.watch.connMu.Lock()
	server.watch.conn.Close() // the check fails: the database answers
	server.watch.connMu.Unlock()
	if _, err := cli.Revoke(ctx, meta.ID); err != nil {
		t.Fatal(err)
	}
	mustFail(t, server, tok, "revoked while the watcher's connection was gone")
	tok2, meta2, err := cli.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, server, tok2, meta2)
}

func TestAuthenticateAfterClose(t *testing.T) {
	s := open(t)
	tok, _, err := s.Create(context.Background(), AdminScope(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Authenticate(context.Background(), tok); err == nil {
		t.Fatal("Authenticate succeeded on a closed store")
	}
}

func TestAuthenticateCanceledContext(t *testing.T) {
	s := open(t)
	tok, _, err := s.Create(context.Background(), AdminScope(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate with a canceled context: %v", err)
	}
}

func TestCacheBound(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	s.cache.max = 3
	var toks []string
	var metas []Token
	for range 8 {
		tok, meta, err := s.Create(ctx, TenantScope("org.acme"), "")
		if err != nil {
			t.Fatal(err)
		}
		toks, metas = append(toks, tok), append(metas, meta)
	}
	for round := range 2 {
		for i, tok := range toks {
			got, err := s.Authenticate(ctx, tok)
			if err != nil || got.ID != metas[i].ID {
				t.Fatalf("round %d, token %d: %+v, %v", round, i, got, err)
			}
			if n := s.cache.len(); n > 3 {
				t.Fatalf("%d rows cached, bound 3", n)
			}
		}
	}
	// A flood of well-formed tokens with unknown ids caches nothing.
	s.cache.max = 0 // the default bound
	before := s.cache.len()
	secret := make([]byte, 32)
	for range 500 {
		id := make([]byte, idHexLen/2)
		rand.Read(id)
		rand.Read(secret)
		mustFail(t, s, tokenPrefix+hex.EncodeToString(id)+"_"+base64.RawURLEncoding.EncodeToString(secret), "unknown id")
	}
	if n := s.cache.len(); n != before {
		t.Fatalf("unknown ids grew the cache from %d to %d rows", before, n)
	}
	// An upper-case id is not another spelling of a cached one.
	mustAuth(t, s, toks[0], metas[0])
	upper := tokenPrefix + strings.ToUpper(toks[0][len(tokenPrefix):len(tokenPrefix)+idHexLen]) + toks[0][len(tokenPrefix)+idHexLen:]
	if upper != toks[0] {
		mustFail(t, s, upper, "upper-case id")
	}
}

// TestCacheConcurrentRevocation: goroutines authenticate while another
// store revokes; every call that starts after Revoke returned fails, and
// the token not revoked keeps working.
func TestCacheConcurrentRevocation(t *testing.T) {
	server, cli := openPair(t)
	testConcurrentRevocation(t, server, cli)
}

// testConcurrentRevocation: calls racing a revocation by cli are never
// answered with the token once Revoke has returned.
func testConcurrentRevocation(t *testing.T, server, cli *Store) {
	ctx := context.Background()
	keep, keepMeta, err := cli.Create(ctx, AdminScope(), "")
	if err != nil {
		t.Fatal(err)
	}
	const workers = 8
	for round := range 5 {
		tok, meta, err := cli.Create(ctx, TenantScope("org.acme"), "")
		if err != nil {
			t.Fatal(err)
		}
		var (
			revoked atomic.Bool
			wg      sync.WaitGroup
			ready   sync.WaitGroup
			errs    = make(chan error, workers)
		)
		ready.Add(workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				signal := sync.OnceFunc(ready.Done) // authenticated once before the revocation
				defer signal()
				for refusedAfter := 0; refusedAfter < 50; {
					after := revoked.Load() // read before the call starts
					got, err := server.Authenticate(ctx, tok)
					switch {
					case after && err == nil:
						errs <- fmt.Errorf("round %d worker %d: token accepted after Revoke returned: %+v", round, w, got)
						return
					case after && !errors.Is(err, ErrInvalidToken):
						errs <- fmt.Errorf("round %d worker %d: %w", round, w, err)
						return
					case after:
						refusedAfter++
					case err != nil && !errors.Is(err, ErrInvalidToken):
						errs <- err
						return
					case err == nil:
						signal()
					}
					if w%2 == 0 {
						if got, err := server.Authenticate(ctx, keep); err != nil || got.ID != keepMeta.ID {
							errs <- fmt.Errorf("the token not revoked: %+v, %v", got, err)
							return
						}
					}
				}
			}()
		}
		ready.Wait()
		if _, err := cli.Revoke(ctx, meta.ID); err != nil {
			t.Fatal(err)
		}
		revoked.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
	}
}

// TestCacheSeesAnotherProcess: the writes are made by a child process (this
// test binary run again), as `hall tokens create|revoke` next to `hall
// serve`.
func TestCacheSeesAnotherProcess(t *testing.T) {
	if os.Getenv("HALL_AUTH_TEST_CHILD") != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()
	s := open(t)
	tok, meta, err := s.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, s, tok, meta)
	child := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HALL_AUTH_TEST_CHILD="+strings.Join(append([]string{s.Path()}, args...), "\n"))
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("child %v: %v\n%s%s", args, err, out.String(), stderr.String())
		}
		line, _, _ := strings.Cut(out.String(), "\n")
		return strings.TrimSpace(line)
	}
	tok2 := child("create")
	if !strings.HasPrefix(tok2, tokenPrefix) {
		t.Fatalf("child printed %q", tok2)
	}
	got, err := s.Authenticate(ctx, tok2)
	if err != nil {
		t.Fatalf("a token created by another process: %v", err)
	}
	mustAuth(t, s, tok2, got)
	child("revoke", meta.ID)
	mustFail(t, s, tok, "revoked by another process")
	mustAuth(t, s, tok2, got)
	child("revoke", got.ID)
	mustFail(t, s, tok2, "revoked by another process")
}

// TestChildProcess is TestCacheSeesAnotherProcess's other process.
func TestChildProcess(t *testing.T) {
	args := strings.Split(os.Getenv("HALL_AUTH_TEST_CHILD"), "\n")
	if len(args) < 2 {
		t.Skip("run by TestCacheSeesAnotherProcess")
	}
	s, err := Open(args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	switch args[1] {
	case "create":
		tok, _, err := s.Create(ctx, TenantScope("org.acme"), "child")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(tok)
	case "revoke":
		if _, err := s.Revoke(ctx, args[2]); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown action %q", args[1])
	}
}

// TestCacheWaitsForACheckStartedAfterTheCall: a call that arrives while a
// check is running, after a revocation that check may have missed, waits
// for the next check rather than use that one.
func TestCacheWaitsForACheckStartedAfterTheCall(t *testing.T) {
	server, cli := openPair(t)
	testWaitsForACheckStartedAfterTheCall(t, server, cli)
}

// testWaitsForACheckStartedAfterTheCall: a call made after a revocation
// returned is not answered by a check that started before it.
func testWaitsForACheckStartedAfterTheCall(t *testing.T, server, cli *Store) {
	ctx := context.Background()
	tok, meta, err := cli.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, server, tok, meta)
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	server.watch.connMu.Lock()
	server.watch.afterRead = func() {
		once.Do(func() { // the first check stops after reading the version
			close(reached)
			<-release
		})
	}
	server.watch.connMu.Unlock()

	first := make(chan error, 1)
	go func() { _, err := server.Authenticate(ctx, tok); first <- err }()
	<-reached // a check is running, and has read the version before the revocation
	if _, err := cli.Revoke(ctx, meta.ID); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { _, err := server.Authenticate(ctx, tok); second <- err }()
	for { // until the second call waits for the running check to end
		server.watch.mu.Lock()
		waiting := server.watch.cur != nil && server.watch.cur.done != nil
		server.watch.mu.Unlock()
		if waiting {
			break
		}
		runtime.Gosched()
	}
	close(release)
	<-first // started before the revocation returned: either answer is right
	if err := <-second; !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a call made after Revoke returned was answered by a check started before: %v", err)
	}
}

// TestCacheRefusesRowsReadBeforeAnInvalidation: a row read from the
// database before a check saw a change is not cached after it.
func TestCacheRefusesRowsReadBeforeAnInvalidation(t *testing.T) {
	var c tokenCache
	k := tokenKey{1}
	_, _, gen := c.get(k) // a miss; the row is then read
	c.invalidate()        // meanwhile a check sees a commit
	c.put(k, cacheEntry{tok: Token{ID: "tok_010000000000"}}, gen)
	if _, ok, _ := c.get(k); ok {
		t.Fatal("a row read before an invalidation was cached")
	}
	_, _, gen = c.get(k)
	c.put(k, cacheEntry{tok: Token{ID: "tok_010000000000"}}, gen)
	if _, ok, _ := c.get(k); !ok {
		t.Fatal("a row read after the last invalidation was not cached")
	}
}
