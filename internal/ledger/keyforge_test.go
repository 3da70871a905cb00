package ledger

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wcphall/hall/internal/pgtest"
)

// forge appends r to s's ledger signed by s's key without the checks of a
// write transaction: a row written directly by whoever holds the key.
func forge(t *testing.T, s *SQLite, r *Receipt) {
	t.Helper()
	tx, err := s.w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.prepareReceipt(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.link(tx, c); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func verifyWith(t *testing.T, s *SQLite, keys map[string]ed25519.PublicKey) *Report {
	t.Helper()
	rep, err := s.VerifyWith(context.Background(), VerifyOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func breakNaming(rep *Report, keyID, want string) bool {
	for _, b := range rep.Breaks {
		if strings.Contains(b.Reason, keyID) && strings.Contains(b.Reason, want) {
			return true
		}
	}
	return false
}

// TestUnadmittedKeyReported (issue 22, item 4): a row signed by a key
// the keyring never admitted is reported by its key id, also by a
// verifier told to trust that key (a key set it was handed, a node's own
// key): before keys were admitted, any trusted key could sign anywhere in
// the ledger and verify passed.
func TestUnadmittedKeyReported(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			var a, c *SQLite
			if backend == "postgres" {
				dsn := pgtest.NewDatabase(t)
				a, c = openPG(t, dsn, filepath.Join(dir, "a")), openPG(t, dsn, filepath.Join(dir, "c"))
			} else {
				var err error
				if a, err = Open(dir, WithKeyFile(filepath.Join(dir, "a.key"))); err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				if c, err = Open(dir, WithKeyFile(filepath.Join(dir, "c.key"))); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			if err := a.Append(ctx, newReceipt("org.a", 1)); err != nil {
				t.Fatal(err)
			}
			forge(t, c, newReceipt("org.c", 1))
			if rep := verifyWith(t, a, nil); !breakNaming(rep, c.KeyID(), "signed by key") {
				t.Fatalf("an entry by an unadmitted key, verifier trusting the ledger's key: %v", rep.Breaks)
			}
			trusting := map[string]ed25519.PublicKey{a.KeyID(): a.PublicKey(), c.KeyID(): c.PublicKey()}
			if rep := verifyWith(t, a, trusting); !breakNaming(rep, c.KeyID(), "never admitted") {
				t.Fatalf("an entry by an unadmitted key the verifier trusts: %v", rep.Breaks)
			}
			if backend == "sqlite" {
				// The independent verifier, handed a key set holding c.
				script := nodeVerifier(t)
				bundle := filepath.Join(t.TempDir(), "bundle")
				if _, err := a.ExportBundle(ctx, bundle); err != nil {
					t.Fatal(err)
				}
				ks := &KeySet{Keys: []PublishedKey{{KeyID: a.KeyID(), PublicKey: base64.StdEncoding.EncodeToString(a.PublicKey())},
					{KeyID: c.KeyID(), PublicKey: base64.StdEncoding.EncodeToString(c.PublicKey())}}}
				kp := filepath.Join(t.TempDir(), "keys.json")
				if err := writeJSONFile(kp, ks); err != nil {
					t.Fatal(err)
				}
				if out, code := runNode(t, script, nil, bundle, "--keys", kp); code == 0 || !strings.Contains(out, "never admitted") {
					t.Fatalf("the Node verifier trusting the unadmitted key: exit %d: %s", code, out)
				}
			}
		})
	}
}

// TestAdmissionOnlyByOwnKey: an admission signed by a node's admitted key
// (written directly: AdmitKey refuses it) establishes nothing: a key it
// admits is reported as never admitted, so revoking a node cannot leave
// keys it admitted behind.
func TestAdmissionOnlyByOwnKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var nodes [3]*SQLite
	for i := range nodes {
		s, err := Open(dir, WithKeyFile(filepath.Join(dir, string(rune('a'+i))+".key")))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		nodes[i] = s
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	if err := a.Append(ctx, newReceipt("org.a", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AdmitKey(ctx, b.PublicKey(), "node-b", "local:admin"); err != nil {
		t.Fatal(err)
	}
	body, err := canonicalMarshal(KeyAdmission{KeyID: c.KeyID(), PublicKey: base64.StdEncoding.EncodeToString(c.PublicKey()), Node: "node-c",
		AdmittedBy: b.KeyID(), AdmittedByPublicKey: base64.StdEncoding.EncodeToString(b.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := b.w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	ch := Change{Kind: ChangeKeyAdmit, Subject: c.KeyID(), Digest: digestOf(c.PublicKey()), Body: body, Actor: "local:b",
		At: time.Now().UTC().Truncate(time.Microsecond), Version: formatV2, ChangeID: newChangeID()}
	if err := b.linkChange(tx, "forge", &ch); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	forge(t, c, newReceipt("org.c", 1))
	if rep := verifyWith(t, a, nil); !breakNaming(rep, c.KeyID(), "never admitted") {
		t.Fatalf("an entry by a key a node admitted: %v", rep.Breaks)
	}
}
