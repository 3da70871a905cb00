package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"sync"
	"testing"

	"filippo.io/edwards25519"
)

// torsionPoints returns the 8 points of order dividing 8: [L]P for a
// point P whose torsion part has order 8 generates them.
func torsionPoints(t testing.TB) []*edwards25519.Point {
	t.Helper()
	minusOne := edwards25519.NewScalar().Subtract(edwards25519.NewScalar(), scalarOne())
	for i := 0; i < 64; i++ {
		var b [32]byte
		rand.Read(b[:])
		P, err := new(edwards25519.Point).SetBytes(b[:])
		if err != nil {
			continue
		}
		// [L]P = [L-1]P + P: only P's torsion part survives.
		T := new(edwards25519.Point).ScalarMult(minusOne, P)
		T.Add(T, P)
		pts := []*edwards25519.Point{edwards25519.NewIdentityPoint()}
		for Q := new(edwards25519.Point).Set(T); Q.Equal(edwards25519.NewIdentityPoint()) != 1; Q = new(edwards25519.Point).Add(Q, T) {
			pts = append(pts, Q)
		}
		if len(pts) == 8 {
			return pts
		}
	}
	t.Fatal("no point with a torsion part of order 8 in 64 tries")
	return nil
}

func scalarOne() *edwards25519.Scalar {
	var b [32]byte
	b[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	return s
}

// secretScalar is the scalar a of priv (A = [a]B), as RFC 8032 derives it.
func secretScalar(priv ed25519.PrivateKey) *edwards25519.Scalar {
	h := sha512.Sum512(priv.Seed())
	a, _ := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	return a
}

// challenge is k = SHA-512(R || A || msg) mod L.
func challenge(R, pub, msg []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(R)
	h.Write(pub)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	return k
}

// signWithR signs msg with secret scalar a under public key bytes pub,
// using the given R = [r]B + T (T a torsion point, or nil): what only a
// key holder can make, and what crypto/ed25519 rejects when T is not the
// identity.
func signWithR(a *edwards25519.Scalar, pub, msg []byte, T *edwards25519.Point) []byte {
	var rb [64]byte
	rand.Read(rb[:])
	r, _ := edwards25519.NewScalar().SetUniformBytes(rb[:])
	R := new(edwards25519.Point).ScalarBaseMult(r)
	if T != nil {
		R.Add(R, T)
	}
	k := challenge(R.Bytes(), pub, msg)
	S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return append(R.Bytes(), S.Bytes()...)
}

// plusL returns s + L as 32 little-endian bytes: the non-canonical
// encoding of the same scalar.
func plusL(s []byte) []byte {
	le := func(b []byte) *big.Int {
		be := make([]byte, len(b))
		for i := range b {
			be[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(be)
	}
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	v := new(big.Int).Add(le(s), l).FillBytes(make([]byte, 32))
	out := make([]byte, 32)
	for i := range v {
		out[31-i] = v[i]
	}
	return out
}

// TestKeyVerifierAgreesWithStdlib: the table-based verifier accepts and
// rejects exactly what crypto/ed25519.Verify does, on valid signatures, on
// every single-bit change of a signature, on signatures by another key,
// on non-canonical S, on small-order and mixed-order R, and on keys that
// are small-order, carry a torsion part or are encoded non-canonically.
func TestKeyVerifierAgreesWithStdlib(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	a := secretScalar(priv)
	torsion := torsionPoints(t)
	identity := edwards25519.NewIdentityPoint().Bytes()

	type tc struct {
		name     string
		pub, sig []byte
		msg      []byte
		want     *bool // when set, what both must say
	}
	yes, no := true, false
	var cases []tc
	msg := func(i int) []byte { return []byte(fmt.Sprintf("sha256:%064x", i)) }
	for i := 0; i < 20; i++ {
		m := msg(i)
		sig := ed25519.Sign(priv, m)
		cases = append(cases, tc{fmt.Sprintf("valid %d", i), pub, sig, m, &yes})
		for bit := 0; bit < 512; bit += 1 + i {
			bad := append([]byte(nil), sig...)
			bad[bit/8] ^= 1 << (bit % 8)
			cases = append(cases, tc{fmt.Sprintf("sig %d bit %d flipped", i, bit), pub, bad, m, &no})
		}
		cases = append(cases,
			tc{fmt.Sprintf("other message %d", i), pub, sig, msg(i + 1000), &no},
			tc{fmt.Sprintf("signed by another key %d", i), pub, ed25519.Sign(otherPriv, m), m, &no},
			tc{fmt.Sprintf("valid under the other key %d", i), otherPub, ed25519.Sign(otherPriv, m), m, &yes},
			tc{fmt.Sprintf("S+L, non-canonical %d", i), pub, append(sig[:32:32], plusL(sig[32:])...), m, &no},
			tc{fmt.Sprintf("short signature %d", i), pub, sig[:63], m, &no},
			tc{fmt.Sprintf("long signature %d", i), pub, append(sig[:64:64], 0), m, &no},
		)
		// S with the top bits set, and S = L exactly (canonical only below L).
		high := append([]byte(nil), sig...)
		high[63] |= 0xe0
		cases = append(cases, tc{fmt.Sprintf("S with top bits %d", i), pub, high, m, &no})
	}
	zero := make([]byte, 32)
	cases = append(cases, tc{"S = L", pub, append(ed25519.Sign(priv, msg(1))[:32:32], plusL(zero)...), msg(1), &no})
	for j, T := range torsion {
		m := msg(2000 + j)
		// R a small-order point; S = k·a makes [S]B − [k]A the identity.
		k := challenge(T.Bytes(), pub, m)
		S := edwards25519.NewScalar().Multiply(k, a)
		cases = append(cases, tc{fmt.Sprintf("small-order R %d, S=k·a", j), pub, append(T.Bytes(), S.Bytes()...), m, nil})
		cases = append(cases, tc{fmt.Sprintf("small-order R %d, S=0", j), pub, append(T.Bytes(), zero...), m, nil})
		// R with a torsion part: crypto/ed25519's cofactorless check rejects.
		cases = append(cases, tc{fmt.Sprintf("mixed-order R %d", j), pub, signWithR(a, pub, m, T), m, nil})
		// Small-order keys: with R and S chosen so that the equation
		// holds, crypto/ed25519 accepts; the verifier must too.
		tb := T.Bytes()
		cases = append(cases,
			tc{fmt.Sprintf("small-order key %d, R=identity S=0", j), tb, append(append([]byte(nil), identity...), zero...), m, nil},
			tc{fmt.Sprintf("small-order key %d, R=key S=0", j), tb, append(append([]byte(nil), tb...), zero...), m, nil},
		)
		// A key with a torsion part, signing honestly: crypto/ed25519
		// accepts only when k kills the torsion part.
		At := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(a), T).Bytes()
		for n := 0; n < 8; n++ {
			mm := msg(3000 + 8*j + n)
			cases = append(cases, tc{fmt.Sprintf("key with torsion %d, message %d", j, n), At, signWithR(a, At, mm, nil), mm, nil})
		}
	}
	// Non-canonical encodings of small-order points: y unreduced, or
	// x = 0 with the sign bit set.
	nonCanon := []string{
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1 ≡ 1
		"0100000000000000000000000000000000000000000000000000000000000080", // identity, x sign set
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = p-1, sign set (x = 0)
	}
	for j, h := range nonCanon {
		enc, _ := hex.DecodeString(h)
		m := msg(4000 + j)
		cases = append(cases,
			tc{fmt.Sprintf("non-canonical key %d, R=identity S=0", j), enc, append(append([]byte(nil), identity...), zero...), m, nil},
			tc{fmt.Sprintf("non-canonical R %d", j), pub, append(append([]byte(nil), enc...), zero...), m, nil},
		)
	}
	// A key that is not a point at all.
	notPoint, _ := hex.DecodeString("0200000000000000000000000000000000000000000000000000000000000000")
	cases = append(cases, tc{"key not on the curve", notPoint, append(append([]byte(nil), identity...), zero...), msg(5000), &no})

	verifiers := map[string]*keyVerifier{}
	accepted := 0
	// The deferred path: every case started, then all finished with one
	// shared inversion, as Verify does per chunk.
	checks := make([]sigCheck, len(cases))
	started := make([]bool, len(cases))
	var pending []*sigCheck
	for i, c := range cases {
		v := verifiers[string(c.pub)]
		if v == nil {
			v = newKeyVerifier(ed25519.PublicKey(c.pub))
			verifiers[string(c.pub)] = v
		}
		if started[i] = v.start(c.msg, c.sig, &checks[i]); started[i] {
			pending = append(pending, &checks[i])
		}
	}
	finishSigChecks(pending)
	for i, c := range cases {
		v := verifiers[string(c.pub)]
		got, std := v.verify(c.msg, c.sig), ed25519.Verify(ed25519.PublicKey(c.pub), c.msg, c.sig)
		if got != std {
			t.Errorf("%s: keyVerifier says %v, crypto/ed25519 says %v", c.name, got, std)
		}
		if deferred := started[i] && checks[i].valid; deferred != std {
			t.Errorf("%s: deferred check says %v, crypto/ed25519 says %v", c.name, deferred, std)
		}
		if c.want != nil && std != *c.want {
			t.Errorf("%s: crypto/ed25519 says %v, the case expects %v (test case wrong)", c.name, std, *c.want)
		}
		if got {
			accepted++
		}
	}
	// The edge cases must include accepted ones (small-order keys),
	// or the comparison above proves less than it says.
	if accepted <= 40 {
		t.Errorf("only %d cases accepted: the edge cases exercise no acceptance", accepted)
	}
}

// FuzzKeyVerifier: on any key, message and signature the table-based
// verifier says what crypto/ed25519.Verify says.
func FuzzKeyVerifier(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	for i := 0; i < 4; i++ {
		m := []byte(fmt.Sprintf("sha256:%064x", i))
		f.Add([]byte(pub), m, ed25519.Sign(priv, m))
	}
	for _, T := range torsionPoints(f) {
		f.Add(T.Bytes(), []byte("m"), append(edwards25519.NewIdentityPoint().Bytes(), make([]byte, 32)...))
	}
	verifiers := map[string]*keyVerifier{}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return // crypto/ed25519 panics; VerifyWith refuses such keys
		}
		v := verifiers[string(pub)]
		if v == nil {
			if len(verifiers) > 16 {
				clear(verifiers)
			}
			v = newKeyVerifier(ed25519.PublicKey(pub))
			verifiers[string(pub)] = v
		}
		if got, std := v.verify(msg, sig), ed25519.Verify(pub, msg, sig); got != std {
			t.Fatalf("pub %x msg %q sig %x: keyVerifier says %v, crypto/ed25519 says %v", pub, msg, sig, got, std)
		}
	})
}

// BenchmarkSignatureVerify compares one signature check by the
// table-based verifier (table built) with crypto/ed25519.Verify.
func BenchmarkSignatureVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msgs := make([][]byte, 256)
	sigs := make([][]byte, 256)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf("sha256:%064x", i))
		sigs[i] = ed25519.Sign(priv, msgs[i])
	}
	b.Run("table", func(b *testing.B) {
		v := newKeyVerifier(pub)
		v.verify(msgs[0], sigs[0])
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if !v.verify(msgs[i%256], sigs[i%256]) {
				b.Fatal("valid signature rejected")
			}
		}
	})
	b.Run("crypto-ed25519", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if !ed25519.Verify(pub, msgs[i%256], sigs[i%256]) {
				b.Fatal("valid signature rejected")
			}
		}
	})
	b.Run("table-build", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			newPointTable(edwards25519.NewGeneratorPoint())
		}
	})
}

// TestVerifyNamesEachForgedSignature: in a ledger larger than one verify
// chunk, signatures forged in four streams — at the first row of the
// walk, at the last row of a chunk, at the first row of the next, at the
// end of a stream — are each reported at exactly that receipt, and the
// untouched stream stays clean. The forgeries: random bytes; a valid
// signature of the same hash by another key under the ledger's key id; a
// valid signature with S written non-canonically (S+L); and a signature
// by the ledger's own key whose R carries a small-order part, which only
// the key holder can make and crypto/ed25519 rejects.
func TestVerifyNamesEachForgedSignature(t *testing.T) {
	s := openT(t, t.TempDir(), WithSync(SyncNormal))
	const per = 300 // streams a..d: rows 0-299, 300-599, 600-899, 900-1199
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for _, c := range []struct {
		tenant string
		n      int
	}{{"a", per}, {"b", per}, {"c", per}, {"d", per}, {"e", 50}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < c.n; i++ {
				if err := s.Append(context.Background(), newReceipt(c.tenant, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	verifyOK(t, s, nil)

	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	own := s.key.Load()
	torsion := torsionPoints(t)
	forgeries := []struct {
		tenant string
		seq    uint64 // global row: (tenant index)·300 + seq − 1
		forge  func(hash string, sig []byte) []byte
	}{
		{"a", 1, func(string, []byte) []byte { // row 0
			b := make([]byte, 64)
			rand.Read(b)
			b[63] &= 0x0f
			return b
		}},
		{"b", verifyChunk - per, func(hash string, _ []byte) []byte { // row 511, last of chunk 0
			return ed25519.Sign(otherPriv, []byte(hash))
		}},
		{"c", per, func(_ string, sig []byte) []byte { // row 899, the stream's end
			return append(sig[:32:32], plusL(sig[32:])...)
		}},
		{"d", 2*verifyChunk - 3*per + 1, func(hash string, _ []byte) []byte { // row 1024, first of chunk 2
			return signWithR(secretScalar(own.priv), own.pub, []byte(hash), torsion[4])
		}},
	}
	db := rawDB(t, s)
	want := map[string]string{}
	for _, f := range forgeries {
		var id, hash, sig64 string
		if err := db.QueryRow(`SELECT receipt_id, receipt_hash, signature FROM receipts WHERE tenant_id = ? AND seq = ?`, f.tenant, f.seq).Scan(&id, &hash, &sig64); err != nil {
			t.Fatal(err)
		}
		sig, _ := base64.StdEncoding.DecodeString(sig64)
		forged := f.forge(hash, sig)
		if ed25519.Verify(own.pub, []byte(hash), forged) {
			t.Fatalf("%s/%d: the forgery verifies with crypto/ed25519 (test wrong)", f.tenant, f.seq)
		}
		mustExec(t, db, `UPDATE receipts SET signature = ? WHERE receipt_id = ?`, base64.StdEncoding.EncodeToString(forged), id)
		want[f.tenant] = fmt.Sprintf("%s %d", id, f.seq)
	}
	rep, err := s.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Receipts != 4*per+50 {
		t.Errorf("walked %d receipts, want %d", rep.Receipts, 4*per+50)
	}
	got := map[string]string{}
	for _, b := range rep.Breaks {
		got[b.Tenant] = fmt.Sprintf("%s %d", b.ReceiptID, b.Sequence)
		if !strings.Contains(b.Reason, "signature does not verify") {
			t.Errorf("%s: reason %q, want a signature failure", b.Tenant, b.Reason)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("breaks at %v, want exactly %v", got, want)
	}
}

// TestVerifyNamesForgedDecisionSignature: a decision-chain entry whose
// signature is replaced by another key's signature of the same hash (and
// one whose signature is a mixed-order forgery by the ledger's own key)
// is reported at exactly that entry; the untouched chain stays clean.
func TestVerifyNamesForgedDecisionSignature(t *testing.T) {
	s := openT(t, t.TempDir(), WithSync(SyncNormal))
	kinds := []string{"allowed", "denied", "dry", "allowed", "denied", "allowed"}
	a := recordDecisions(t, s, "a", kinds...)
	b := recordDecisions(t, s, "b", kinds...)
	recordDecisions(t, s, "c", kinds...)
	verifyOK(t, s, nil)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	own := s.key.Load()
	db := rawEvidenceDB(t, s)
	forge := map[string]func(hash string) []byte{
		a[3].DecisionID: func(hash string) []byte { return ed25519.Sign(otherPriv, []byte(hash)) },
		b[1].DecisionID: func(hash string) []byte {
			return signWithR(secretScalar(own.priv), own.pub, []byte(hash), torsionPoints(t)[2])
		},
	}
	for id, f := range forge {
		var hash string
		if err := db.QueryRow(`SELECT hash FROM entries WHERE entry_id = ?`, id).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, `UPDATE entries SET signature = ? WHERE entry_id = ?`, base64.StdEncoding.EncodeToString(f(hash)), id)
	}
	rep, err := s.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, br := range rep.Breaks {
		got[br.Tenant] = br.ReceiptID
		if br.Chain != ChainDecisions || !strings.Contains(br.Reason, "signature does not verify") {
			t.Errorf("%+v: want a signature failure in the decision chain", br)
		}
	}
	if want := map[string]string{"a": a[3].DecisionID, "b": b[1].DecisionID}; !maps.Equal(got, want) {
		t.Errorf("breaks at %v, want exactly %v", got, want)
	}
}
