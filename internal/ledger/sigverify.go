package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"sync"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// keyVerifier verifies Ed25519 signatures by one public key. It accepts
// exactly the signatures crypto/ed25519.Verify accepts for that key (the
// same checks in the same order: signature length, the top bits of S, S
// canonical, and the encoding of [S]B − [k]A equal to R's 32 bytes, with k
// hashed over the key's bytes as given), but it computes [S]B and [k]A
// from tables of multiples of B and of −A built once, instead of 253
// doublings per signature: Verify checks every entry of a ledger against
// the same one or two keys (RATIONALE.md, "Signature verification with a
// fixed key"). TestKeyVerifierAgreesWithStdlib and FuzzKeyVerifier hold
// it equal to crypto/ed25519.
//
// It is safe for concurrent use; the table is built at the first
// verification.
type keyVerifier struct {
	pub  ed25519.PublicKey
	once sync.Once
	negA *pointTable // nil when pub is not a point: nothing verifies
}

// newKeyVerifier verifies signatures by pub (copied: a caller reusing
// its buffer must not change the key under the table).
func newKeyVerifier(pub ed25519.PublicKey) *keyVerifier {
	return &keyVerifier{pub: bytes.Clone(pub)}
}

// verify reports whether sig is pub's signature of msg.
func (v *keyVerifier) verify(msg, sig []byte) bool {
	var c sigCheck
	if !v.start(msg, sig, &c) {
		return false
	}
	return bytes.Equal(c.R.Bytes(), c.want[:])
}

// sigCheck is a signature verified but for its last step: comparing the
// encoding of the point R computed from the signature with the R bytes the
// signature carries. Encoding a point costs a field inversion, a quarter
// of a table-based verification; [finishSigChecks] shares one inversion
// among many checks (Montgomery's trick).
type sigCheck struct {
	R    edwards25519.Point
	want [32]byte
	// valid is set by finishSigChecks.
	valid bool
}

// start runs every step of verify but the last into c; false means the
// signature already failed.
func (v *keyVerifier) start(msg, sig []byte, c *sigCheck) bool {
	if len(v.pub) != ed25519.PublicKeySize {
		return false // crypto/ed25519 panics; keys are checked before they get here
	}
	if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	v.once.Do(func() {
		A, err := new(edwards25519.Point).SetBytes(v.pub)
		if err == nil {
			v.negA = newPointTable(new(edwards25519.Point).Negate(A))
		}
	})
	if v.negA == nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(v.pub)
	h.Write(msg)
	var digest [sha512.Size]byte
	k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return false // cannot happen: the digest has 64 bytes
	}
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	R := c.R.Set(edwards25519.NewIdentityPoint())
	basepoint().addMultiple(R, S)
	v.negA.addMultiple(R, k)
	copy(c.want[:], sig[:32])
	return true
}

// finishSigChecks encodes the points of cs with one field inversion and
// sets each check's valid. The encoding is Point.Bytes's: y = Y/Z with
// the sign of x = X/Z in the top bit.
func finishSigChecks(cs []*sigCheck) {
	if len(cs) == 0 {
		return
	}
	// prefix[i] = Z_0·…·Z_i; Z is never 0 for a point the library built,
	// but a zero would make every inverse 0, so it is left to Bytes.
	prefix := make([]field.Element, len(cs))
	coords := make([][3]*field.Element, len(cs)) // X, Y, Z
	var zero field.Element
	acc := new(field.Element).One()
	for i, c := range cs {
		X, Y, Z, _ := c.R.ExtendedCoordinates()
		coords[i] = [3]*field.Element{X, Y, Z}
		if Z.Equal(&zero) == 1 {
			for _, c := range cs {
				c.valid = bytes.Equal(c.R.Bytes(), c.want[:])
			}
			return
		}
		prefix[i].Set(acc.Multiply(acc, Z))
	}
	inv := new(field.Element).Invert(acc) // 1/(Z_0·…·Z_n-1)
	var zInv, x, y field.Element
	for i := len(cs) - 1; i >= 0; i-- {
		if i > 0 {
			zInv.Multiply(inv, &prefix[i-1])
			inv.Multiply(inv, coords[i][2]) // now 1/(Z_0·…·Z_i-1)
		} else {
			zInv.Set(inv)
		}
		x.Multiply(coords[i][0], &zInv)
		y.Multiply(coords[i][1], &zInv)
		var enc [32]byte
		copy(enc[:], y.Bytes())
		enc[31] |= byte(x.IsNegative() << 7)
		cs[i].valid = enc == cs[i].want
	}
}

// pointTable holds d·256^j·P for d in 1..128 and j in 0..31: with it,
// [s]P for any scalar s is at most 32 additions (s written in signed
// base-256 digits), where a scalar multiplication without a table costs
// 253 doublings and ~50 additions. 655 KB per point.
type pointTable [32][128]edwards25519.Point

func newPointTable(p *edwards25519.Point) *pointTable {
	t := new(pointTable)
	base := new(edwards25519.Point).Set(p)
	for j := range t {
		row := &t[j]
		row[0].Set(base)
		for d := 1; d < len(row); d++ {
			row[d].Add(&row[d-1], base)
		}
		base.Add(&row[127], &row[127]) // 256·base
	}
	return t
}

// addMultiple adds [s]P to acc.
func (t *pointTable) addMultiple(acc *edwards25519.Point, s *edwards25519.Scalar) {
	// s < 2^253, little-endian: digits b+carry recentred into
	// [-128, 128); the last byte is at most 0x1f, so no carry leaves it.
	carry := 0
	for j, b := range s.Bytes() {
		d := int(b) + carry
		carry = 0
		if d >= 128 {
			d -= 256
			carry = 1
		}
		switch {
		case d > 0:
			acc.Add(acc, &t[j][d-1])
		case d < 0:
			acc.Subtract(acc, &t[j][-d-1])
		}
	}
}

var basepoint = sync.OnceValue(func() *pointTable {
	return newPointTable(edwards25519.NewGeneratorPoint())
})
