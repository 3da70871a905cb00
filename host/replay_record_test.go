package host_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
)

// Issue 21 (red team): hall replay took the sealed record of the replayed
// worker from the enroll change's body without checking the change, and
// ran the module under whatever the body said. A replay now runs only
// under a record whose enroll change's hash and signature verify, whose
// seal is the receipt's record_digest and whose module is the receipt's:
// an edited body (with its hash left as it was, or recomputed) refuses
// the replay, and nothing runs.
func TestReplayRefusesEditedEnrollChange(t *testing.T) {
	_, guest := governedModules(t)
	for _, tc := range []struct {
		name   string
		rehash bool // recompute the row's hash over the edited body
	}{
		{"body edited", false},
		{"body and hash edited", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := openInteg(t, oneRule("cap.test.cfg", "wrk.test.cfg", "dev"), "", host.Options{})
			enrollOK(t, h, guest, `{"worker_id": "org.acme.cfg", "worker_species_id": "wrk.test.cfg", "capabilities": ["cap.test.cfg"], "risk_tier": "low",
			  "determinism": "full", "entrypoints": {"cap.test.cfg": "config"}, "config": {"greeting": "Howdy"}}`)
			ctx := context.Background()
			res, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.cfg", "dev", "INTERNAL", "c-edited"), Payload: []byte("greeting")})
			if err != nil || res.Outcome != "ok" || !strings.Contains(string(res.Output), "Howdy") {
				t.Fatalf("run: outcome %q output %q err %v", res.Outcome, res.Output, err)
			}

			db, err := sql.Open("sqlite", filepath.Join(h.Options().Dir, ".hall", ledger.DBFile)+"?_busy_timeout=5000")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var body string
			if err := db.QueryRow(`SELECT body FROM changes WHERE kind = 'enroll'`).Scan(&body); err != nil {
				t.Fatal(err)
			}
			forged := strings.Replace(body, `"greeting":"Howdy"`, `"greeting":"Pwned"`, 1)
			if forged == body {
				t.Fatalf("enroll body without the greeting: %s", body)
			}
			sum := sha256.Sum256([]byte(forged))
			hash := "sha256:" + hex.EncodeToString(sum[:])
			q := `UPDATE changes SET body = ? WHERE kind = 'enroll'`
			args := []any{forged}
			if tc.rehash {
				q = `UPDATE changes SET body = ?, hash = ? WHERE kind = 'enroll'`
				args = append(args, hash)
			}
			if _, err := db.Exec("DROP TRIGGER changes_no_update"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(q, args...); err != nil {
				t.Fatal(err)
			}

			ev, err := h.Evidence()
			if err != nil {
				t.Fatal(err)
			}
			before, err := ev.Receipts(ctx, ledger.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			rp, err := h.Replay(ctx, res.ReceiptID, []byte("greeting"))
			if err == nil {
				t.Fatalf("replay under an edited enroll change ran: output %q, receipt %q", rp.Output, rp.ReplayReceiptID)
			}
			if !strings.Contains(err.Error(), res.ReceiptID) {
				t.Errorf("the error does not name the receipt %s: %v", res.ReceiptID, err)
			}
			after, err := ev.Receipts(ctx, ledger.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("a refused replay left a receipt (%d → %d)", len(before), len(after))
			}
		})
	}
}
