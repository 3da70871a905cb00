package host_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the tamper hook opens the ledger behind the store's back

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/storetest"
)

// The storage seam's contract, run against the SQLite-and-files default.
func TestLocalStores(t *testing.T) {
	storetest.TestStores(t, storetest.Backend{
		New: func(t *testing.T) string { return filepath.Join(t.TempDir(), ".hall") },
		Open: func(t *testing.T, home string) *host.Stores {
			st, err := host.OpenLocalStores(home, host.LocalStoreOptions{})
			if err != nil {
				t.Fatalf("OpenLocalStores: %v", err)
			}
			return st
		},
		TamperEvidence: func(t *testing.T, home, receiptID string) {
			db, err := sql.Open("sqlite", filepath.Join(home, "hall.db")+"?_busy_timeout=5000")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range []string{"DROP TRIGGER receipts_no_update",
				`UPDATE receipts SET body = replace(body, '"outcome":"ok"', '"outcome":"DENIED"') WHERE receipt_id = ?`} {
				var args []any
				if q[0] == 'U' {
					args = append(args, receiptID)
				}
				res, err := db.Exec(q, args...)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if n, _ := res.RowsAffected(); q[0] == 'U' && n != 1 {
					t.Fatalf("%s: changed %d row(s)", q, n)
				}
			}
		},
		TamperArtifact: func(t *testing.T, home string, d wcp.Digest) {
			path := filepath.Join(home, "artifacts", "sha256", d.Hex()+".wasm")
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("\x00asm\x01\x00\x00\x00 changed"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// A Hall given Stores keeps its modules and evidence there, not in Home,
// and leaves them open at Close: they are the caller's (issue 21: the
// artifact directory had no Options field).
func TestHallUsesGivenStores(t *testing.T) {
	ctx := context.Background()
	elsewhere := filepath.Join(t.TempDir(), "stores")
	st, err := host.OpenLocalStores(elsewhere, host.LocalStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := newHall(t, host.Options{Stores: &host.Stores{Evidence: st.Evidence, Artifacts: st.Artifacts}})
	home := h.Options().Home
	res, err := h.Run(ctx, host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, res)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d := wcp.Digest(sha256sum(mods.tiny))
	if _, err := st.Artifacts.Get(ctx, d); err != nil {
		t.Fatalf("the module is not in the given artifact store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "artifacts", "sha256", d.Hex()+".wasm")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the module was stored in Home too: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "hall.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a ledger was created in Home: %v", err)
	}
	r, err := st.Evidence.Receipt(ctx, res.ReceiptID) // still open after Hall.Close
	if err != nil || r.DecisionID != res.Decision.DecisionID.String() {
		t.Fatalf("the receipt is not in the given evidence store: %+v, %v", r, err)
	}
}

// Opened read-only, the local evidence creates nothing: no state
// directory, no database, no key (hall audit verify and hall receipts).
func TestOpenLocalEvidenceReadOnlyCreatesNothing(t *testing.T) {
	home := filepath.Join(t.TempDir(), ".hall")
	if _, err := host.OpenLocalEvidence(home, host.LocalStoreOptions{ReadOnly: true}); !errors.Is(err, host.ErrNoEvidence) {
		t.Fatalf("read-only open of no ledger = %v, want ErrNoEvidence", err)
	}
	if _, err := os.Stat(home); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a read-only open created the state directory: %v", err)
	}
	if _, err := host.OpenLocalStores(home, host.LocalStoreOptions{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "LocalStoreOptions.ReadOnly") {
		t.Fatalf("OpenLocalStores read-only = %v, want an error naming LocalStoreOptions.ReadOnly", err)
	}
	rw, err := host.OpenLocalEvidence(home, host.LocalStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rw.Close()
	ro, err := host.OpenLocalEvidence(home, host.LocalStoreOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	err = ro.RecordChange(context.Background(), &host.Change{Kind: "snapshot", Subject: "snapshot", Digest: digest([]byte("x")), Actor: "file"})
	if err == nil {
		t.Fatal("a read-only evidence store recorded a change")
	}
}
