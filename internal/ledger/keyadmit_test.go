package ledger

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wcphall/hall/internal/pgtest"
)

// keyNodes opens two nodes of one ledger with their own keys, on both
// backends: the first writes first, so its key is the ledger's own.
func keyNodes(t *testing.T, backend string) (a, b *SQLite) {
	t.Helper()
	dir := t.TempDir()
	switch backend {
	case "postgres":
		dsn := pgtest.NewDatabase(t)
		a = openPG(t, dsn, filepath.Join(dir, "a"))
		b = openPG(t, dsn, filepath.Join(dir, "b"))
	default:
		var err error
		if a, err = Open(dir, WithKeyFile(filepath.Join(dir, "a.key"))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		if b, err = Open(dir, WithKeyFile(filepath.Join(dir, "b.key"))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
	}
	return a, b
}

// TestAdmittedKeySigns (issue 22, item 4): a node with its own key signs
// nothing until an administrator admits the key (ErrKeyNotAdmitted, with
// the hall keys admit command), then signs beside the ledger's key; a
// revoked key signs nothing more; verify trusts an admitted key through
// the admission, reports both signers, and reports by name an entry
// signed by a key never admitted (even one the verifier was told to
// trust) or signed after its revocation.
func TestAdmittedKeySigns(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			a, b := keyNodes(t, backend)
			if err := a.Append(ctx, newReceipt("org.a", 1)); err != nil {
				t.Fatal(err)
			}
			err := b.Append(ctx, newReceipt("org.b", 1))
			if !errors.Is(err, ErrKeyNotAdmitted) || !strings.Contains(err.Error(), "hall keys admit "+hex.EncodeToString(b.PublicKey())) {
				t.Fatalf("an unadmitted node's append: %v, want ErrKeyNotAdmitted with the admit command", err)
			}
			if st, err := b.KeyStanding(ctx); err != nil || st.Standing != "not_admitted" || st.Signs() {
				t.Fatalf("standing before admission: %+v %v", st, err)
			}
			if _, err := b.AdmitKey(ctx, b.PublicKey(), "self", "local:b"); !errors.Is(err, ErrKeyNotAdmitted) {
				t.Fatalf("an unadmitted key admitting itself: %v", err)
			}

			adm, err := a.AdmitKey(ctx, b.PublicKey(), "node-b", "local:admin")
			if err != nil {
				t.Fatal(err)
			}
			if adm.Kind != ChangeKeyAdmit || adm.Subject != b.KeyID() || adm.SigningKeyID != a.KeyID() {
				t.Fatalf("admission change: %+v", adm)
			}
			for name, pub := range map[string]ed25519.PublicKey{"twice": b.PublicKey(), "the ledger's own": a.PublicKey()} {
				if _, err := a.AdmitKey(ctx, pub, "x", "local:admin"); !errors.Is(err, ErrInvalid) {
					t.Errorf("admitting %s key: %v", name, err)
				}
			}
			if err := b.Append(ctx, newReceipt("org.b", 1)); err != nil {
				t.Fatalf("the admitted node's append: %v", err)
			}
			if err := b.Append(ctx, newReceipt("org.a", 2)); err != nil {
				t.Fatalf("the admitted node appending to the other's chain: %v", err)
			}
			if err := a.Append(ctx, newReceipt("org.a", 3)); err != nil {
				t.Fatal(err)
			}
			if st, _ := b.KeyStanding(ctx); st.Standing != "admitted" {
				t.Fatalf("standing after admission: %+v", st)
			}
			_, c, _ := ed25519.GenerateKey(nil)
			if _, err := b.AdmitKey(ctx, c.Public().(ed25519.PublicKey), "node-c", "local:b"); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "only the ledger's own key") {
				t.Fatalf("an admitted node admitting another key: %v", err)
			}
			if _, err := b.RotateKey(ctx, "local:b"); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "admitted") {
				t.Fatalf("rotating an admitted key: %v", err)
			}
			ks, err := b.KeySet(ctx)
			if err != nil || len(ks.Keys) != 2 || ks.Keys[0].KeyID != a.KeyID() || ks.Keys[1].Node != "node-b" || ks.Keys[1].AdmittedIn != adm.ChangeID {
				t.Fatalf("key set: %+v %v", ks, err)
			}
			admittedKeySet := ks

			// The ledger's own key rotates; the admitted key signs on, and a
			// verifier trusting only the new key reaches it through the
			// rotation's proof and the admission.
			oldA := a.KeyID()
			if _, err := a.RotateKey(ctx, "local:admin"); err != nil {
				t.Fatal(err)
			}
			if err := b.Append(ctx, newReceipt("org.b", 2)); err != nil {
				t.Fatalf("the admitted node's append after the ledger's key rotated: %v", err)
			}
			if err := a.Append(ctx, newReceipt("org.a", 4)); err != nil {
				t.Fatal(err)
			}
			rep := verifyOK(t, a, nil)
			signers := map[string]Signer{}
			for _, s := range rep.Signers {
				signers[s.KeyID] = s
			}
			if signers[a.KeyID()].Entries == 0 || signers[oldA].Entries == 0 || signers[b.KeyID()].Entries != 3 || signers[b.KeyID()].Node != "node-b" {
				t.Fatalf("signers: %+v", rep.Signers)
			}

			// A checkpoint by the admitted node, stored with the ledger.
			if _, err := b.Checkpoint(ctx); err != nil {
				t.Fatalf("a checkpoint by the admitted node: %v", err)
			}

			// Revoked: the node signs nothing more; what was signed before
			// still verifies.
			if _, err := a.RevokeKey(ctx, a.KeyID(), "local:admin", ""); !errors.Is(err, ErrKey) {
				t.Fatalf("revoking the ledger's own key: %v", err)
			}
			if _, err := a.RevokeKey(ctx, b.KeyID(), "local:admin", "node retired"); err != nil {
				t.Fatal(err)
			}
			if err := b.Append(ctx, newReceipt("org.b", 5)); !errors.Is(err, ErrKeyNotAdmitted) || !strings.Contains(err.Error(), "revoked") {
				t.Fatalf("a revoked node's append: %v", err)
			}
			if st, _ := b.KeyStanding(ctx); st.Standing != "revoked" {
				t.Fatalf("standing after revocation: %+v", st)
			}
			if _, err := a.AdmitKey(ctx, b.PublicKey(), "again", "local:admin"); !errors.Is(err, ErrInvalid) {
				t.Fatalf("re-admitting a revoked key: %v", err)
			}
			verifyOK(t, a, nil)
			nodeVerifies(t, a, "", "")
			if ks, err := a.KeySet(ctx); err != nil || len(ks.Keys) != 3 || ks.Keys[2].KeyID != b.KeyID() || ks.Keys[2].RevokedIn == "" || ks.Keys[2].ValidUntil == "" || ks.Keys[1].RotatedIn == "" {
				t.Fatalf("key set after a rotation and the revocation: %+v %v (before: %+v)", ks, err, admittedKeySet)
			}

			// A checkpoint the revoked key signed anyway, of heads written
			// after its revocation.
			if err := a.Append(ctx, newReceipt("org.b", 6)); err != nil {
				t.Fatal(err)
			}
			late := Checkpoint{Version: formatV2, CheckpointID: "cp_late", CreatedAt: time.Now().UTC().Format(time.RFC3339Nano),
				Heads: verifyOK(t, a, nil).Heads, SigningKeyID: b.KeyID()}
			if late.Hash, err = late.ComputeHash(); err != nil {
				t.Fatal(err)
			}
			late.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(b.key.Load().priv, []byte(late.Hash)))
			if rep, err := a.VerifyWith(ctx, VerifyOptions{Checkpoints: []Checkpoint{late}}); err != nil || !breakNaming(rep, b.KeyID(), "revoked before the heads it names") {
				t.Fatalf("a checkpoint signed after the revocation: %v %v", rep, err)
			}

			// A row the revoked key signed anyway, written directly.
			forge(t, b, newReceipt("org.b", 3))
			if rep := verifyWith(t, a, nil); !breakNaming(rep, b.KeyID(), "signed after its revocation") {
				t.Fatalf("an entry signed after revocation: %v", rep.Breaks)
			}
			nodeVerifies(t, a, "org.b", "signed by a key after its revocation")
		})
	}
}

// nodeVerifies exports s's evidence bundle and runs the independent Node
// verifier on it: it passes when want is "", else fails naming want at
// the stream.
func nodeVerifies(t *testing.T, s *SQLite, stream, want string) {
	t.Helper()
	script := nodeVerifier(t)
	bundle := filepath.Join(t.TempDir(), "bundle")
	if _, err := s.ExportBundle(context.Background(), bundle); err != nil {
		t.Fatal(err)
	}
	out, code := runNode(t, script, nil, bundle)
	switch {
	case want == "" && code != 0:
		t.Fatalf("the Node verifier refuses a bundle with admitted keys: %s", out)
	case want != "" && (code == 0 || !strings.Contains(out, want) || !strings.Contains(out, stream)):
		t.Fatalf("the Node verifier, want %q at %s: exit %d: %s", want, stream, code, out)
	}
}

// TestRevocationDuringBurst: a node appends from several goroutines while
// the administrator revokes its key. Every append either commits before
// the revocation's heads or fails with ErrKeyNotAdmitted, so the ledger
// verifies: the standing read after the write's locks leaves no window
// in which a revoked key signs.
func TestRevocationDuringBurst(t *testing.T) {
	ctx := context.Background()
	a, b := keyNodes(t, "postgres")
	if err := a.Append(ctx, newReceipt("org.a", 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AdmitKey(ctx, b.PublicKey(), "node-b", "local:admin"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	started := make(chan struct{})
	var once sync.Once
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				err := b.Append(ctx, newReceipt([]string{"org.a", "org.b"}[(w+i)%2], w*100+i))
				switch {
				case err == nil:
					ok.Add(1)
					once.Do(func() { close(started) })
				case errors.Is(err, ErrKeyNotAdmitted):
					refused.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	<-started
	if _, err := a.RevokeKey(ctx, b.KeyID(), "local:admin", ""); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if refused.Load() == 0 {
		t.Logf("the burst ended before the revocation (%d appends)", ok.Load())
	}
	rep := verifyOK(t, a, nil)
	t.Logf("%d appends committed, %d refused after the revocation; %d receipts verify", ok.Load(), refused.Load(), rep.Receipts)
}
