package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wcphall/hall/host/wcp"
)

func digest(s string) string { return wcp.Digest(sha256.Sum256([]byte(s))).String() }

// newReceipt returns a valid dispatch receipt without chain fields.
func newReceipt(tenant string, i int) *Receipt {
	return &Receipt{
		CorrelationID:    fmt.Sprintf("corr-%s-%d", tenant, i),
		DispatchedAt:     time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600)).Add(time.Duration(i) * time.Second),
		WorkerID:         "org.acme.summarizer",
		CapabilityID:     "cap.doc.summarize",
		PolicyDecision:   "ALLOW",
		ControlsVerified: []string{"ctrl.obs.audit-log-append-only"},
		ArtifactHash:     digest("module"),
		DecisionID:       uuid.NewString(),
		TenantID:         tenant,
		RequestHash:      digest(fmt.Sprint("request", i)),
		InputHash:        digest(fmt.Sprint("input", i)),
		OutputHash:       digest(fmt.Sprint("output", i)),
		DurationMS:       12.5,
		Outcome:          "ok",
		Limits:           Limits{TimeoutMS: 5000, MemoryMB: 64, InputBytes: 1 << 20, OutputBytes: 1 << 20},
		Determinism:      "deterministic",
		InputPayload:     []byte(`{"text":"<b>hi</b> & bye"}`),
		OutputPayload:    []byte("out"),
	}
}

func openT(t testing.TB, dir string, opts ...Option) *SQLite {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t testing.TB, s *SQLite, tenant string, n int) []*Receipt {
	t.Helper()
	var out []*Receipt
	for i := 0; i < n; i++ {
		r := newReceipt(tenant, i)
		if err := s.Append(context.Background(), r); err != nil {
			t.Fatalf("Append %s #%d: %v", tenant, i, err)
		}
		out = append(out, r)
	}
	return out
}

func verifyOK(t testing.TB, s *SQLite, pub ed25519.PublicKey) *Report {
	t.Helper()
	rep, err := s.Verify(context.Background(), pub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("Verify found breaks: %v", rep.Breaks)
	}
	return rep
}

func TestOpenCreatesStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := openT(t, dir)
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{dir, 0o700},
		{filepath.Join(dir, "keys"), 0o700},
		{filepath.Join(dir, KeyFile), 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode().Perm(), c.mode)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err != nil {
		t.Errorf("database file: %v", err)
	}
	var mode string
	if err := s.r.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var sync int
	if err := s.w.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("writer synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	if !strings.HasPrefix(s.KeyID(), "ed25519:") || len(s.KeyID()) != len("ed25519:")+16 {
		t.Errorf("KeyID() = %q", s.KeyID())
	}
	if s.KeyID() != KeyID(s.PublicKey()) {
		t.Errorf("KeyID() = %q, KeyID(PublicKey()) = %q", s.KeyID(), KeyID(s.PublicKey()))
	}
}

func TestKeyPersistsAcrossOpens(t *testing.T) {
	dir := t.TempDir()
	s1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub := s1.PublicKey()
	r := appendN(t, s1, "t1", 1)[0]
	s1.Close()
	s2 := openT(t, dir)
	if !pub.Equal(s2.PublicKey()) {
		t.Fatal("reopening generated a new key")
	}
	if got := appendN(t, s2, "t1", 1)[0]; got.PrevReceiptHash != r.ReceiptHash || got.Sequence != 2 {
		t.Errorf("second receipt after reopen: seq %d prev %q, want 2 %q", got.Sequence, got.PrevReceiptHash, r.ReceiptHash)
	}
	verifyOK(t, s2, nil)
}

func TestOpenRejectsExposedKey(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir).Close()
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Open with a 0644 key: %v, want ErrKey asking for chmod 600", err)
	}
}

func TestAppendFillsChainFields(t *testing.T) {
	s := openT(t, t.TempDir())
	rs := appendN(t, s, "tenant-a", 3)
	for i, r := range rs {
		if _, err := uuid.Parse(r.ReceiptID); err != nil || uuid.MustParse(r.ReceiptID).Version() != 7 {
			t.Errorf("receipt %d: id %q is not a UUIDv7", i, r.ReceiptID)
		}
		if r.Sequence != uint64(i+1) {
			t.Errorf("receipt %d: sequence %d", i, r.Sequence)
		}
		wantPrev := ""
		if i > 0 {
			wantPrev = rs[i-1].ReceiptHash
		}
		if r.PrevReceiptHash != wantPrev {
			t.Errorf("receipt %d: prev %q, want %q", i, r.PrevReceiptHash, wantPrev)
		}
		// receipt_hash is sha256 of the canonical JSON without the seal.
		body, err := r.CanonicalBody()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(body, []byte(`"receipt_hash"`)) || bytes.Contains(body, []byte(`"signature"`)) {
			t.Errorf("canonical body contains the seal: %s", body)
		}
		if want := digest(string(body)); r.ReceiptHash != want {
			t.Errorf("receipt %d: hash %s, want %s", i, r.ReceiptHash, want)
		}
		if r.SigningKeyID != s.KeyID() {
			t.Errorf("receipt %d: key id %q, want %q", i, r.SigningKeyID, s.KeyID())
		}
		if !VerifySignature(s.PublicKey(), r) {
			t.Errorf("receipt %d: signature does not verify", i)
		}
		if r.DispatchedAt.Location() != time.UTC || r.DispatchedAt.Nanosecond()%1000 != 0 {
			t.Errorf("receipt %d: dispatched_at %v not UTC µs", i, r.DispatchedAt)
		}
		if r.InputPayload != nil || r.OutputPayload != nil {
			t.Errorf("receipt %d: payloads kept without WithPayloads", i)
		}
	}
	// A new tenant starts its own chain.
	b := appendN(t, s, "tenant-b", 1)[0]
	if b.Sequence != 1 || b.PrevReceiptHash != "" {
		t.Errorf("first receipt of tenant-b: seq %d prev %q", b.Sequence, b.PrevReceiptHash)
	}
}

func TestCanonicalBody(t *testing.T) {
	r := newReceipt("t", 0)
	r.ReceiptID = "0190a000-0000-7000-8000-000000000000"
	r.Sequence = 1
	r.SigningKeyID = "ed25519:0123456789abcdef"
	r.DispatchedAt = time.Date(2025, 1, 2, 3, 4, 5, 120000000, time.UTC)
	r.ControlsVerified = nil
	r.InputPayload, r.OutputPayload = nil, nil
	r.ErrorMessage = "<&>"
	body, err := r.CanonicalBody()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"artifact_hash":"` + digest("module") + `","capability_id":"cap.doc.summarize","controls_verified":[],` +
		`"correlation_id":"corr-t-0","decision_id":"` + r.DecisionID + `","determinism":"deterministic",` +
		`"dispatched_at":"2025-01-02T03:04:05.120000Z","duration_ms":12.5,"error_message":"<&>",` +
		`"input_hash":"` + digest("input0") + `","limits":{"input_bytes":1048576,"memory_mb":64,"output_bytes":1048576,"timeout_ms":5000},` +
		`"outcome":"ok","output_hash":"` + digest("output0") + `","policy_decision":"ALLOW","prev_receipt_hash":null,` +
		`"receipt_id":"0190a000-0000-7000-8000-000000000000","request_hash":"` + digest("request0") + `","sequence":1,` +
		`"signing_key_id":"ed25519:0123456789abcdef","tenant_id":"t","worker_id":"org.acme.summarizer"}`
	if string(body) != want {
		t.Errorf("canonical body\n got %s\nwant %s", body, want)
	}
}

func TestAppendValidates(t *testing.T) {
	s := openT(t, t.TempDir())
	cases := []struct {
		name  string
		edit  func(*Receipt)
		field string
	}{
		{"no tenant", func(r *Receipt) { r.TenantID = "" }, "tenant_id"},
		{"no correlation", func(r *Receipt) { r.CorrelationID = "" }, "correlation_id"},
		{"no worker", func(r *Receipt) { r.WorkerID = "" }, "worker_id"},
		{"no time", func(r *Receipt) { r.DispatchedAt = time.Time{} }, "dispatched_at"},
		{"bad artifact hash", func(r *Receipt) { r.ArtifactHash = "sha256:XYZ" }, "artifact_hash"},
		{"bare hex input hash", func(r *Receipt) { r.InputHash = strings.TrimPrefix(digest("x"), "sha256:") }, "input_hash"},
		{"bad outcome", func(r *Receipt) { r.Outcome = "failed!" }, "outcome"},
		{"negative duration", func(r *Receipt) { r.DurationMS = -1 }, "duration_ms"},
		{"replay_of not a receipt id", func(r *Receipt) { r.ReplayOf = "rcpt\x1b[2J" }, "replay_of"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceipt("t", 0)
			tc.edit(r)
			before := *r
			err := s.Append(context.Background(), r)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Append: %v, want ErrInvalid naming %s", err, tc.field)
			}
			if r.ReceiptID != before.ReceiptID || r.ReceiptHash != before.ReceiptHash {
				t.Error("a failed Append modified the receipt")
			}
		})
	}
	// A failed error outcome without output is fine.
	r := newReceipt("t", 0)
	r.Outcome, r.OutputHash, r.ErrorMessage = "LIMIT_TIMEOUT", "", "worker exceeded 5000ms"
	if err := s.Append(context.Background(), r); err != nil {
		t.Fatalf("Append timeout receipt: %v", err)
	}
	got, err := s.Receipt(context.Background(), r.ReceiptID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != "LIMIT_TIMEOUT" || got.OutputHash != "" || got.ErrorMessage != r.ErrorMessage {
		t.Errorf("read back %+v", got)
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	s := openT(t, t.TempDir(), WithPayloads())
	in := newReceipt("t", 7)
	if err := s.Append(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Receipt(context.Background(), in.ReceiptID)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(in)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Errorf("read back differs\n got %s\nwant %s", b, a)
	}
	if string(got.InputPayload) != `{"text":"<b>hi</b> & bye"}` {
		t.Errorf("input payload %q", got.InputPayload)
	}
	if !bytes.Contains(a, []byte(`"input_payload":"eyJ0ZXh0`)) {
		t.Errorf("payload is not base64 in JSON: %s", a)
	}
	_, err = s.Receipt(context.Background(), uuid.NewString())
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing receipt: %v, want ErrNotFound", err)
	}
}

func TestReceiptsFilter(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	var all []*Receipt
	for i := 0; i < 6; i++ {
		tenant := []string{"a", "b"}[i%2]
		r := newReceipt(tenant, i)
		if i == 4 {
			r.WorkerID = "org.acme.other"
		}
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	ids := func(rs []Receipt) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ReceiptID)
		}
		return out
	}
	want := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, all[i].ReceiptID)
		}
		return out
	}
	cases := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all newest first", Filter{}, want(5, 4, 3, 2, 1, 0)},
		{"tenant", Filter{TenantID: "a"}, want(4, 2, 0)},
		{"worker", Filter{WorkerID: "org.acme.other"}, want(4)},
		{"correlation", Filter{CorrelationID: all[3].CorrelationID}, want(3)},
		{"since", Filter{Since: all[3].DispatchedAt}, want(5, 4, 3)},
		{"since in another zone", Filter{Since: all[3].DispatchedAt.In(time.FixedZone("Y", -7*3600))}, want(5, 4, 3)},
		{"limit", Filter{Limit: 2}, want(5, 4)},
		{"combined", Filter{TenantID: "b", Since: all[2].DispatchedAt, Limit: 1}, want(5)},
		{"no match", Filter{TenantID: "zzz"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Receipts(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tc.want) {
				t.Errorf("got %v\nwant %v", ids(got), tc.want)
			}
		})
	}
}

func TestVerifyKeys(t *testing.T) {
	s := openT(t, t.TempDir())
	appendN(t, s, "a", 3)
	appendN(t, s, "b", 2)
	rep := verifyOK(t, s, nil)
	if rep.Streams != 2 || rep.Receipts != 5 || len(rep.Heads) != 2+schemaChanges || rep.Heads[schemaChanges].Sequence != 3 {
		t.Errorf("report %+v", rep)
	}
	verifyOK(t, s, s.PublicKey())

	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = s.Verify(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Breaks) != 2+schemaChanges {
		t.Fatalf("verify with a wrong key: %+v, want a break in the change chain and both streams", rep.Breaks)
	}
	rep.Breaks = rep.Breaks[schemaChanges:]
	first, _ := s.Receipts(context.Background(), Filter{TenantID: "a", Limit: 3})
	if b := rep.Breaks[0]; b.Tenant != "a" || b.ReceiptID != first[2].ReceiptID || !strings.Contains(b.Reason, "signed by key") {
		t.Errorf("break %+v, want the first receipt of a, signed by another key", b)
	}
}

func TestPublicKeyFile(t *testing.T) {
	s := openT(t, t.TempDir())
	dir := t.TempDir()
	pemPath := filepath.Join(dir, "hall.pub")
	if err := WritePublicKey(pemPath, s.PublicKey()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(pemPath)
	if !bytes.HasPrefix(data, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Errorf("public key file:\n%s", data)
	}
	hexPath := filepath.Join(dir, "hall.hex")
	if err := os.WriteFile(hexPath, fmt.Appendf(nil, "  %x\n", []byte(s.PublicKey())), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pemPath, hexPath} {
		pub, err := ReadPublicKey(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !pub.Equal(s.PublicKey()) {
			t.Errorf("%s: read a different key", p)
		}
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("abcd"), 0o644)
	if _, err := ReadPublicKey(bad); !errors.Is(err, ErrKey) {
		t.Errorf("malformed key file: %v, want ErrKey", err)
	}
	// A read-only ledger opened where the key is absent verifies with a
	// key file.
	appendN(t, s, "a", 2)
	s.Close()
	os.Remove(filepath.Join(filepath.Dir(s.Path()), KeyFile))
	ro := openT(t, filepath.Dir(s.Path()), ReadOnly())
	if _, err := ro.Verify(context.Background(), nil); !errors.Is(err, ErrKey) {
		t.Errorf("verify without any key: %v, want ErrKey", err)
	}
	pub, _ := ReadPublicKey(pemPath)
	verifyOK(t, ro, pub)
}

func TestConcurrentAppends(t *testing.T) {
	s := openT(t, t.TempDir())
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			tenant := []string{"a", "b"}[g%2]
			for i := 0; i < each; i++ {
				if err := s.Append(context.Background(), newReceipt(tenant, g*1000+i)); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep := verifyOK(t, s, nil)
	if rep.Streams != 2 || rep.Receipts != goroutines*each {
		t.Fatalf("streams %d receipts %d, want 2 and %d", rep.Streams, rep.Receipts, goroutines*each)
	}
	for _, h := range rep.Heads {
		if h.Chain == ChainChanges {
			continue
		}
		if h.Sequence != goroutines*each/2 {
			t.Errorf("tenant %s head at %d, want %d", h.Tenant, h.Sequence, goroutines*each/2)
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	appendN(t, s, "a", 2)
	s.Close()
	for i := 0; i < 3; i++ {
		s := openT(t, dir)
		v, err := userVersion(context.Background(), s.r)
		if err != nil || v != schemaVersion {
			t.Fatalf("user_version = %d, %v; want %d", v, err, schemaVersion)
		}
		var n int
		if err := s.r.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != schemaVersion {
			t.Fatalf("schema_migrations rows = %d, %v; want %d", n, err, schemaVersion)
		}
		rep := verifyOK(t, s, nil)
		if rep.Receipts != 2 {
			t.Fatalf("receipts after reopen: %d", rep.Receipts)
		}
		s.Close()
	}
	// A database from a newer Hall is refused, not misread.
	s = openT(t, dir)
	if _, err := s.w.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestExportJSONLines(t *testing.T) {
	s := openT(t, t.TempDir())
	appendN(t, s, "b", 2)
	appendN(t, s, "a", 3)
	var buf bytes.Buffer
	if err := s.Export(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var order []string
	prev := map[string]string{}
	for sc.Scan() {
		line := sc.Bytes()
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", len(order)+1, err, line)
		}
		// An outside verifier needs nothing but the line: drop the seal,
		// canonicalize, hash, check the link and the signature.
		hash, sig := m["receipt_hash"].(string), m["signature"].(string)
		delete(m, "receipt_hash")
		delete(m, "signature")
		body, err := canonicalMarshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if digest(string(body)) != hash {
			t.Errorf("line %d: receipt_hash does not match its content", len(order)+1)
		}
		var r Receipt
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Signature != sig || !VerifySignature(s.PublicKey(), &r) {
			t.Errorf("line %d: signature does not verify", len(order)+1)
		}
		if r.PrevReceiptHash != prev[r.TenantID] {
			t.Errorf("line %d: not in chain order", len(order)+1)
		}
		prev[r.TenantID] = hash
		order = append(order, fmt.Sprintf("%s%d", r.TenantID, r.Sequence))
	}
	if got := strings.Join(order, " "); got != "a1 a2 a3 b1 b2" {
		t.Errorf("export order %q", got)
	}
}

func TestDecisionsAndEvents(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	decision := json.RawMessage(`{"decision_id":"d1","denied":true,"dry_run":true,"telemetry_envelopes":[` +
		`{"event_id":"evt.os.task.denied","correlation_id":"c1"},{"event_id":"evt.gov.blast_scored"}]}`)
	d := DecisionRecord{DecisionID: "d1", CorrelationID: "c1", TenantID: "t", CapabilityID: "cap.x",
		Denied: true, DenyCode: "DENY_NO_MATCHING_RULE", DryRun: true, Decision: decision,
		Timestamp: time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)}
	if err := s.RecordDecision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordEvents(ctx, "c1", []json.RawMessage{json.RawMessage(`{"event_id":"evt.worker.executed","n":1}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Decision(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	// Read from its signed entry, in canonical form.
	if want, _ := canonical(decision); !got.Denied || !got.DryRun || got.DenyCode != d.DenyCode || !got.Timestamp.Equal(d.Timestamp) || string(got.Decision) != string(want) {
		t.Errorf("decision read back %+v", got)
	}
	evs, err := s.Events(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		var h struct {
			EventID string `json:"event_id"`
		}
		json.Unmarshal(e, &h)
		ids = append(ids, h.EventID)
	}
	if fmt.Sprint(ids) != "[evt.os.task.denied evt.gov.blast_scored evt.worker.executed]" {
		t.Errorf("events %v", ids)
	}
	if err := s.RecordDecision(ctx, d); err == nil {
		t.Error("recording the same decision twice succeeded")
	}
	if _, err := s.Decision(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing decision: %v", err)
	}
	bad := []struct {
		name string
		err  error
	}{
		{"decision not JSON", s.RecordDecision(ctx, DecisionRecord{DecisionID: "d2", Decision: json.RawMessage(`{`)})},
		{"decision without id", s.RecordDecision(ctx, DecisionRecord{Decision: decision})},
		{"event not an object", s.RecordEvents(ctx, "c2", []json.RawMessage{json.RawMessage(`{"ok":1}`), json.RawMessage(`[1]`)})},
	}
	for _, b := range bad {
		if !errors.Is(b.err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", b.name, b.err)
		}
	}
	if evs, _ := s.Events(ctx, "c2"); len(evs) != 0 {
		t.Errorf("a rejected batch stored %d events", len(evs))
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing"), ReadOnly()); err == nil {
		t.Fatal("Open ReadOnly of a missing ledger succeeded")
	}
	s := openT(t, dir)
	appendN(t, s, "a", 2)
	s.Close()

	ro := openT(t, dir, ReadOnly())
	ctx := context.Background()
	err := ro.Append(ctx, newReceipt("a", 9))
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append on a read-only ledger: %v, want ErrReadOnly", err)
	}
	if err := ro.RecordEvents(ctx, "c", []json.RawMessage{json.RawMessage(`{}`)}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("RecordEvents on a read-only ledger: %v, want ErrReadOnly", err)
	}
	rep := verifyOK(t, ro, nil)
	if rep.Receipts != 2 {
		t.Errorf("read-only verify saw %d receipts", rep.Receipts)
	}
	if rs, err := ro.Receipts(ctx, Filter{}); err != nil || len(rs) != 2 {
		t.Errorf("Receipts: %d, %v", len(rs), err)
	}
}

// TestUnwritableFile makes the database file itself read-only. Root
// ignores file modes, so the test only runs as an ordinary user; TestReadOnly
// covers the same error path through SQLite's mode=ro everywhere.
func TestUnwritableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: file modes do not stop writes")
	}
	dir := t.TempDir()
	s := openT(t, dir)
	appendN(t, s, "a", 1)
	s.Close()
	os.Chmod(filepath.Join(dir, DBFile), 0o444)
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, DBFile), 0o644) })
	s, err := Open(dir)
	if err == nil {
		defer s.Close()
		err = s.Append(context.Background(), newReceipt("a", 1))
	}
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write to a 0444 database: %v, want ErrReadOnly", err)
	}
}

func TestAppendCancelledLeavesNoTrace(t *testing.T) {
	s := openT(t, t.TempDir())
	first := appendN(t, s, "a", 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := newReceipt("a", 1)
	if err := s.Append(ctx, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v, want context.Canceled", err)
	}
	if r.ReceiptID != "" {
		t.Error("a failed Append filled the receipt")
	}
	next := appendN(t, s, "a", 1)[0]
	if next.Sequence != 2 || next.PrevReceiptHash != first.ReceiptHash {
		t.Errorf("after a cancelled Append: seq %d prev %q", next.Sequence, next.PrevReceiptHash)
	}
	verifyOK(t, s, nil)
}
