package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects a child's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `hall serve` as a child process and returns its base URL
// once it listens.
func startServe(t *testing.T, dir string, args ...string) (string, *exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(hallBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HALL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	logs := &syncBuffer{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			// The startup summary: {"msg": "hall: serving the Hall API", "url": ...}.
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "hall: serving the Hall API" {
				addr <- rec.URL
			}
		}
	}()
	select {
	case a := <-addr:
		return a, cmd, logs
	case <-time.After(30 * time.Second):
		t.Fatalf("hall serve did not start:\n%s", logs.String())
	}
	return "", nil, nil
}

type httpResult struct {
	status int
	body   map[string]any
	raw    string
}

// curl is one request of the quick start.
func curl(t *testing.T, method, url, token, ctype string, body []byte) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := httpResult{status: res.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %s", method, url, res.StatusCode, raw)
	}
	return r
}

// TestServeQuickstart runs the seed's quick start (steps 3 and 4) against
// the real binary, with tokens, then dispatches over HTTP and stops the
// server with SIGTERM.
func TestServeQuickstart(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, ".hall")
	rules, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "rules.json", string(rules))
	module, err := os.ReadFile(plugin(t, "summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(module)
	artifactHash := "sha256:" + hex.EncodeToString(sum[:])
	var record map[string]any
	b, err := os.ReadFile("../../plugins/summarizer/registry_record.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &record); err != nil {
		t.Fatal(err)
	}
	record["artifact_hash"] = artifactHash
	recordJSON, _ := json.Marshal(record)
	write(t, dir, "my_summarizer/registry_record.json", string(recordJSON))

	admin := hall(t, dir, "", "tokens", "create", "--admin", "--home", home)
	acme := hall(t, dir, "", "tokens", "create", "--tenant", "org.acme", "--home", home)
	if admin.code != 0 || acme.code != 0 {
		t.Fatalf("tokens create: %v %v", admin, acme)
	}
	adminTok, acmeTok := strings.TrimSpace(admin.stdout), strings.TrimSpace(acme.stdout)

	base, cmd, logs := startServe(t, dir, "--home", home)

	// Step 3: the API is up.
	if r := curl(t, "GET", base+"/health", "", "", nil); r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("/health: %+v", r)
	}
	// Upload the module, then step 4 verbatim plus the token header.
	if r := curl(t, "PUT", base+"/artifacts/"+artifactHash, adminTok, "application/wasm", module); r.status != 201 {
		t.Fatalf("upload: %+v", r)
	}
	if r := curl(t, "POST", base+"/enroll", "", "application/json", recordJSON); r.status != 401 {
		t.Fatalf("enroll without a token: %+v", r)
	}
	r := curl(t, "POST", base+"/enroll", adminTok, "application/json", recordJSON)
	if r.status != 201 || r.body["enrolled"] != true || r.body["worker_id"] != "org.acme.summarizer" || r.body["artifact_hash_verified"] != true {
		t.Fatalf("enroll: %+v", r)
	}
	if id, _ := r.body["enrollment_id"].(string); !strings.HasPrefix(id, "enr_") || r.body["enrolled_at"] == nil {
		t.Fatalf("enroll response: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "enrolled", "org.acme.summarizer.json")); err != nil {
		t.Fatalf("the record was not written to enrolled/: %v", err)
	}

	// Dispatch over HTTP.
	text := "The Hall governs workers. Every dispatch is decided first. Receipts record what ran. Nothing runs without evidence."
	run, _ := json.Marshal(map[string]any{
		"input": map[string]any{"capability_id": "cap.doc.summarize", "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": "quickstart-1"},
		"payload": text,
	})
	r = curl(t, "POST", base+"/wcp/run", acmeTok, "application/json", run)
	if r.status != 200 || r.body["outcome"] != "ok" || r.body["output"] == "" {
		t.Fatalf("run: %+v", r)
	}
	receiptID, _ := r.body["receipt_id"].(string)
	r = curl(t, "GET", base+"/wcp/receipts?correlation_id=quickstart-1", acmeTok, "", nil)
	rs, _ := r.body["receipts"].([]any)
	if r.status != 200 || len(rs) != 1 || rs[0].(map[string]any)["receipt_id"] != receiptID {
		t.Fatalf("receipts: %+v", r)
	}

	// Revoking a token in another process takes effect at once.
	list := hall(t, dir, "", "tokens", "list", "--json", "--home", home)
	var toks []map[string]any
	if err := json.Unmarshal([]byte(list.stdout), &toks); err != nil || len(toks) != 2 {
		t.Fatalf("tokens list: %v\n%s", err, list.stdout)
	}
	if strings.Contains(list.stdout, acmeTok) || strings.Contains(list.stdout, adminTok) {
		t.Fatal("tokens list prints a token")
	}
	var acmeID string
	for _, tk := range toks {
		if tk["scope"] == "tenant:org.acme" {
			acmeID = tk["id"].(string)
		}
	}
	if rv := hall(t, dir, "", "tokens", "revoke", acmeID, "--home", home); rv.code != 0 {
		t.Fatalf("revoke: %+v", rv)
	}
	if r := curl(t, "GET", base+"/wcp/receipts", acmeTok, "", nil); r.status != 401 {
		t.Fatalf("a revoked token was accepted: %+v", r)
	}

	// SIGTERM: a clean exit.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("hall serve exited with %v:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("hall serve did not stop on SIGTERM:\n%s", logs.String())
	}
	out := logs.String()
	if !strings.Contains(out, "hall: stopped") || strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Fatalf("unclean stop:\n%s", out)
	}
	for _, want := range []string{`"msg":"http request"`, `"correlation_id":"quickstart-1"`, `"route":"/wcp/run"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

func TestTokensCLI(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "h")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no scope", []string{"tokens", "create"}, exitError, "needs --admin, --tenant ID or --approver"},
		{"both scopes", []string{"tokens", "create", "--admin", "--tenant", "org.acme"}, exitError, "not both"},
		{"blank tenant", []string{"tokens", "create", "--tenant", " "}, exitError, "tenant"},
		{"revoke unknown", []string{"tokens", "revoke", "tok_000000000000"}, exitError, "no token"},
		{"revoke without id", []string{"tokens", "revoke"}, exitError, "exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hall(t, dir, "", append(tc.args, "--home", home)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
	r := hall(t, dir, "", "tokens", "create", "--tenant", "org.acme", "--name", "ci", "--json", "--home", home)
	var created map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &created) != nil || !strings.HasPrefix(created["token"].(string), "hall_") {
		t.Fatalf("create --json: %+v", r)
	}
	l := hall(t, dir, "", "tokens", "list", "--home", home)
	if l.code != 0 || !strings.Contains(l.stdout, created["id"].(string)) || !strings.Contains(l.stdout, "tenant:org.acme") || strings.Contains(l.stdout, created["token"].(string)) {
		t.Fatalf("list: %+v", l)
	}
	fi, err := os.Stat(filepath.Join(home, "auth.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("auth.db: %v %v", fi, err)
	}
}
