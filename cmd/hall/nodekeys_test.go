package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/pgtest"
)

// TestNodeKeysAdmitted (issue 22, item 4): two `hall serve` nodes of one
// PostgreSQL database, each with its own key in its --home. The first
// holds the ledger's own key (the administrator's, created by the first
// command); the second signs nothing until that key is admitted: it
// answers 503 KEY_NOT_ADMITTED and logs and reports on /health the exact
// hall keys admit command. Admitted through the CLI, it signs at its next
// request; hall audit verify passes and names both signers. Revoked, it
// signs nothing more. A receipt row written directly with a key never
// admitted is reported by verify with its key id.
func TestNodeKeysAdmitted(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	home0 := filepath.Join(dir, "admin")
	db := []string{"--database-url", dsn}
	admin := hall(t, dir, "", append([]string{"tokens", "create", "--admin", "--home", home0}, db...)...)
	acme := hall(t, dir, "", append([]string{"tokens", "create", "--tenant", "org.acme", "--home", home0}, db...)...)
	if admin.code != 0 || acme.code != 0 {
		t.Fatalf("tokens create: %+v %+v", admin, acme)
	}
	adminTok, acmeTok := strings.TrimSpace(admin.stdout), strings.TrimSpace(acme.stdout)

	// Node A keeps the administrator's home (the ledger's own key); node
	// B has a home, and so a key, of its own.
	var nodes []*node
	var logsB *syncBuffer
	for i, home := range []string{home0, filepath.Join(dir, "b", ".hall")} {
		ndir := filepath.Join(dir, fmt.Sprintf("n%d", i))
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			t.Fatal(err)
		}
		base, cmd, logs := startServe(t, ndir, append([]string{"--home", home}, db...)...)
		nodes = append(nodes, &node{base: base, kill: func() { cmd.Process.Kill(); cmd.Wait() }})
		logsB = logs
	}
	a, b := nodes[0], nodes[1]
	pubB, err := ledger.ReadPublicKey(writePub(t, filepath.Join(dir, "b", ".hall")))
	if err != nil {
		t.Fatal(err)
	}
	hexB, idB := hex.EncodeToString(pubB), ledger.KeyID(pubB)

	enrollSummarizer(t, a.base, adminTok)
	inForceEverywhere(t, nodes, "the enrollment and rules made through node A")
	route, _ := json.Marshal(map[string]any{"capability_id": "cap.doc.summarize", "env": "dev", "data_label": "INTERNAL",
		"tenant_risk": "low", "qos_class": "P2", "correlation_id": "keys-route"})
	run := func(n *node, id string) httpResult {
		body, _ := json.Marshal(map[string]any{
			"input": map[string]any{"capability_id": "cap.doc.summarize", "env": "dev", "data_label": "INTERNAL",
				"tenant_risk": "low", "qos_class": "P2", "correlation_id": id},
			"payload": "Each node signs with its own key.",
		})
		return curl(t, "POST", n.base+"/wcp/run", acmeTok, "application/json", body)
	}
	refused := func(r httpResult, want string) bool {
		e, _ := r.body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		return r.status == 503 && e["code"] == "KEY_NOT_ADMITTED" && strings.Contains(msg, want)
	}

	// Not admitted: B decides nothing, and says how to admit it.
	if r := curl(t, "POST", b.base+"/wcp/route", acmeTok, "application/json", route); !refused(r, "hall keys admit "+hexB) {
		t.Fatalf("route through the unadmitted node: %d %s\n%s", r.status, r.raw, logsB.String())
	}
	if r := run(b, "keys-unadmitted"); !refused(r, "hall keys admit "+hexB) {
		t.Fatalf("run through the unadmitted node: %d %s", r.status, r.raw)
	}
	h := curl(t, "GET", b.base+"/health", "", "", nil)
	if k, _ := h.body["signing_key"].(map[string]any); h.body["status"] != "key_not_admitted" || k["key_id"] != idB || !strings.Contains(fmt.Sprint(k["admit"]), "hall keys admit "+hexB) {
		t.Fatalf("/health of the unadmitted node: %s", h.raw)
	}
	if !strings.Contains(logsB.String(), "hall keys admit "+hexB) {
		t.Fatalf("the unadmitted node's log does not give the admit command:\n%s", logsB.String())
	}
	if r := run(a, "keys-a-1"); r.status != 200 {
		t.Fatalf("run through node A: %d %s", r.status, r.raw)
	}

	// Bad input: one line naming the fix, nothing recorded.
	for _, args := range [][]string{
		{"keys", "admit", "not-a-key", "--name", "node-b"},
		{"keys", "admit", hexB, "--name", "node\tb"},
		{"keys", "revoke", "ed25519:0000000000000000"},
	} {
		r := hall(t, dir, "", append(append(args, "--home", home0), db...)...)
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 || !strings.Contains(r.stderr, "hall") {
			t.Fatalf("hall %s: %+v", strings.Join(args, " "), r)
		}
		t.Logf("hall %s: %s", strings.Join(args, " "), strings.TrimSpace(r.stderr))
	}

	// Admitted through the CLI: B signs at its next request.
	adm := hall(t, dir, "", append([]string{"keys", "admit", hexB, "--name", "node-b", "--home", home0}, db...)...)
	if adm.code != 0 || !strings.Contains(adm.stdout, "admitted "+idB) {
		t.Fatalf("hall keys admit: %+v", adm)
	}
	// Its very next request signs: the standing is read in every write
	// transaction, so there is nothing to wait for.
	admitted := time.Now()
	if r := curl(t, "POST", b.base+"/wcp/route", acmeTok, "application/json", route); r.status != 200 {
		t.Fatalf("route through node B once admitted: %d %s", r.status, r.raw)
	}
	t.Logf("node B's first decision after the admission was committed answered in %v (its snapshot recorded first)", time.Since(admitted).Round(time.Millisecond))
	if r := run(b, "keys-b-1"); r.status != 200 {
		t.Fatalf("run through node B once admitted: %d %s", r.status, r.raw)
	}
	if h := curl(t, "GET", b.base+"/health", "", "", nil); h.body["status"] != "ok" || h.body["signing_key"] != nil {
		t.Fatalf("/health of the admitted node: %s", h.raw)
	}
	if r := run(a, "keys-a-2"); r.status != 200 {
		t.Fatalf("run through node A: %d %s", r.status, r.raw)
	}
	show := hall(t, dir, "", append([]string{"keys", "show", "--all", "--home", home0}, db...)...)
	if show.code != 0 || !strings.Contains(show.stdout, idB) || !strings.Contains(show.stdout, "node: node-b") {
		t.Fatalf("hall keys show --all: %+v", show)
	}
	if show := hall(t, dir, "", append([]string{"keys", "show", "--home", home0}, db...)...); show.code != 0 || !strings.Contains(show.stdout, "admitted: "+idB+" node node-b, valid ") {
		t.Fatalf("hall keys show: %+v", show)
	}

	// verify passes, and names both signers.
	v := hall(t, dir, "", append([]string{"audit", "verify", "--json", "--home", home0}, db...)...)
	var rep struct {
		OK      bool            `json:"ok"`
		Signers []ledger.Signer `json:"signers"`
		Breaks  []string        `json:"breaks"`
	}
	if err := json.Unmarshal([]byte(v.stdout), &rep); err != nil || v.code != 0 || !rep.OK {
		t.Fatalf("audit verify: %v %+v", err, v)
	}
	byKey := map[string]ledger.Signer{}
	for _, s := range rep.Signers {
		byKey[s.KeyID] = s
	}
	if len(rep.Signers) != 2 || byKey[idB].Node != "node-b" || byKey[idB].Entries == 0 {
		t.Fatalf("signers: %+v", rep.Signers)
	}
	if v := hall(t, dir, "", append([]string{"audit", "verify", "--home", home0}, db...)...); v.code != 0 || !strings.Contains(v.stdout, idB+" (node node-b)") {
		t.Fatalf("audit verify names the signers: %+v", v)
	}

	// Revoked: B signs nothing more; A goes on.
	if r := hall(t, dir, "", append([]string{"keys", "revoke", idB, "--reason", "node retired", "--home", home0}, db...)...); r.code != 0 {
		t.Fatalf("hall keys revoke: %+v", r)
	}
	if r := run(b, "keys-b-revoked"); !refused(r, "revoked") {
		t.Fatalf("run through the revoked node: %d %s", r.status, r.raw)
	}
	if r := run(a, "keys-a-3"); r.status != 200 {
		t.Fatalf("run through node A after the revocation: %d %s", r.status, r.raw)
	}
	if v := hall(t, dir, "", append([]string{"audit", "verify", "--home", home0}, db...)...); v.code != 0 {
		t.Fatalf("audit verify after the revocation: %+v", v)
	}

	// A row written directly, signed by a key never admitted.
	_, forger, _ := ed25519.GenerateKey(nil)
	forgedID := forgeReceipt(t, dsn, forger)
	v = hall(t, dir, "", append([]string{"audit", "verify", "--home", home0}, db...)...)
	forgerID := ledger.KeyID(forger.Public().(ed25519.PublicKey))
	if v.code == 0 || !strings.Contains(v.stdout, forgerID) || !strings.Contains(v.stdout, "never admitted") {
		t.Fatalf("audit verify of receipt %s forged with key %s: %+v", forgedID, forgerID, v)
	}
}

// writePub writes the public half of the node key in home to a file, as
// an operator would copy it (hall keys show prints the same).
func writePub(t *testing.T, home string) string {
	t.Helper()
	r := hall(t, "", "", "keys", "show", "--json", "--home", home)
	var k struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || r.code != 0 {
		t.Fatalf("hall keys show --json: %v %+v", err, r)
	}
	p := filepath.Join(t.TempDir(), "node.pub")
	if err := os.WriteFile(p, []byte(k.PublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// enrollSummarizer uploads and enrolls the summarizer and sets the quick
// start's rules through the node at base.
func enrollSummarizer(t *testing.T, base, adminTok string) {
	t.Helper()
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
	rules, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r := curl(t, "PUT", base+"/artifacts/"+artifactHash, adminTok, "application/wasm", module); r.status != 201 {
		t.Fatalf("upload: %+v", r)
	}
	if r := curl(t, "POST", base+"/enroll", adminTok, "application/json", recordJSON); r.status != 201 {
		t.Fatalf("enroll: %+v", r)
	}
	if r := curl(t, "PUT", base+"/admin/rules", adminTok, "application/json", rules); r.status != 200 {
		t.Fatalf("rules: %+v", r)
	}
}

// forgeReceipt appends to the newest receipt stream of the database a
// receipt signed by key, written with SQL as an intruder with write
// access to the database would, and returns its id.
func forgeReceipt(t *testing.T, dsn string, key ed25519.PrivateKey) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var body, hash string
	if err := conn.QueryRow(ctx, `SELECT body, receipt_hash FROM receipts ORDER BY dispatched_at DESC, seq DESC LIMIT 1`).Scan(&body, &hash); err != nil {
		t.Fatal(err)
	}
	var r ledger.Receipt
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	var seq int64
	if err := conn.QueryRow(ctx, `SELECT seq, receipt_hash FROM stream_heads WHERE tenant_id = $1`, r.TenantID).Scan(&seq, &hash); err != nil {
		t.Fatal(err)
	}
	r.ReceiptID, r.Sequence, r.PrevReceiptHash = uuid.NewString(), uint64(seq)+1, hash
	r.CorrelationID = "forged"
	r.SigningKeyID = ledger.KeyID(key.Public().(ed25519.PublicKey))
	cb, err := r.CanonicalBody()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cb)
	r.ReceiptHash = "sha256:" + hex.EncodeToString(sum[:])
	r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, []byte(r.ReceiptHash)))
	if _, err := conn.Exec(ctx, `INSERT INTO receipts (tenant_id, seq, receipt_id, correlation_id, worker_id, dispatched_at, prev_receipt_hash, receipt_hash, signing_key_id, signature, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.TenantID, int64(r.Sequence), r.ReceiptID, r.CorrelationID, r.WorkerID, r.DispatchedAt.UTC().Format(wcp.TimeLayout),
		r.PrevReceiptHash, r.ReceiptHash, r.SigningKeyID, r.Signature, string(cb)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE stream_heads SET seq = $1, receipt_id = $2, receipt_hash = $3 WHERE tenant_id = $4`,
		int64(r.Sequence), r.ReceiptID, r.ReceiptHash, r.TenantID); err != nil {
		t.Fatal(err)
	}
	return r.ReceiptID
}
