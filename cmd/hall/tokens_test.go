package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/auth"
)

// TestTokensAreRecorded: hall tokens create and revoke record signed
// token changes; hall tokens list says which tokens the evidence ledger
// records (a token written into auth.db alone is not, and is named on
// standard error); an approver token revoked with hall tokens revoke
// answers no approval even if its auth.db row is put back; audit verify
// passes throughout.
func TestTokensAreRecorded(t *testing.T) {
	dir, id := heldHall(t)
	created := hallIn(t, dir, "", nil, "tokens", "create", "--approver", "--json")
	mustOK(t, created, "tokens create")
	var tok struct{ ID, Token string }
	if err := json.Unmarshal([]byte(created.stdout), &tok); err != nil {
		t.Fatal(err)
	}
	st, err := auth.Open(filepath.Join(dir, ".hall", auth.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	_, minted, err := st.Create(context.Background(), auth.AdminScope(), "minted")
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	st.Close()

	list := hallIn(t, dir, "", nil, "tokens", "list", "--json")
	mustOK(t, list, "tokens list")
	var toks []struct {
		ID       string
		Recorded bool
	}
	if err := json.Unmarshal([]byte(list.stdout), &toks); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, x := range toks {
		got[x.ID] = x.Recorded
	}
	if !got[tok.ID] || got[minted.ID] || len(got) != 2 {
		t.Fatalf("tokens list --json: %s", list.stdout)
	}
	if r := hallIn(t, dir, "", nil, "tokens", "list"); r.code != 0 || !strings.Contains(r.stdout, "RECORDED") || !strings.Contains(r.stderr, "1 token(s) have no issuance") {
		t.Fatalf("tokens list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	mustOK(t, hallIn(t, dir, "", nil, "tokens", "revoke", tok.ID), "tokens revoke")
	// The attacker un-revokes the row: the signed revocation still holds.
	tokensExec(t, dir, "UPDATE tokens SET revoked_at = NULL WHERE id = '"+tok.ID+"'")
	r := hallIn(t, dir, "", nil, "approvals", "approve", id, "--token", tok.Token)
	if r.code == 0 || !strings.Contains(r.stderr, "was revoked") {
		t.Fatalf("approval by a token whose signed revocation was undone in auth.db: exit %d\n%s", r.code, r.stderr)
	}
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify")
}

// tokensExec runs SQL statements on dir's token database, as an attacker
// with write access to the state directory does.
func tokensExec(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", auth.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
