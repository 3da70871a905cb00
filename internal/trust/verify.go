package trust

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/wcphall/hall/host/wcp"
)

// Formats of a Signature.
const (
	// FormatBundle is a Sigstore bundle (cosign v3's sign and sign-blob
	// --bundle, hall sign).
	FormatBundle = "sigstore-bundle"
	// FormatSimpleSigning is cosign's older registry layout: a
	// simple-signing payload naming the manifest digest, and a signature
	// over it (the sha256-<hex>.sig tag).
	FormatSimpleSigning = "cosign-simple-signing"
)

// MaxSignatureBytes bounds one signature (a bundle or a payload): a
// bundle of a key signature is a few kilobytes, one with a certificate
// chain and a log entry tens. A larger one is refused unread.
const MaxSignatureBytes = 1 << 20

// Signature is one signature found for an artifact, as the evidence
// stores it.
type Signature struct {
	Format string `json:"format"`
	// Bundle is the Sigstore bundle JSON (FormatBundle).
	Bundle json.RawMessage `json:"bundle,omitempty"`
	// Payload and Sig are the simple-signing payload and its signature
	// (FormatSimpleSigning).
	Payload []byte `json:"payload,omitempty"`
	Sig     []byte `json:"signature,omitempty"`
	// Source says where it was found: a referrer's digest, a tag, a file.
	Source string `json:"source,omitempty"`
}

// Digest is "sha256:<hex>" of the signature's content — the bundle's
// canonical JSON (RFC 8785; its bytes when it is not JSON), or the
// payload and signature — what the evidence names. Canonical, so that
// the digest survives the evidence ledger storing the bundle canonically.
func (s Signature) Digest() string {
	h := sha256.New()
	if s.Format == FormatBundle {
		b := []byte(s.Bundle)
		if len(b) <= MaxSignatureBytes && checkDepth(b, 32) == nil {
			if c, err := wcp.CanonicalJSON(b); err == nil {
				b = c
			}
		}
		h.Write(b)
	} else {
		h.Write(s.Payload)
		h.Write([]byte{0})
		h.Write(s.Sig)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Signer is who a verified signature is from.
type Signer struct {
	// KeyID is the trusted key's id (sha256 of its DER) for a key signer.
	KeyID string `json:"key_id,omitempty"`
	// PublicKey is that key (PEM), so that the evidence can be verified
	// again without the trust policy (hall audit verify).
	PublicKey string `json:"public_key,omitempty"`
	// Issuer and Subject are a keyless signer's OIDC issuer and
	// certificate subject (SAN).
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

func (s Signer) String() string {
	if s.KeyID != "" {
		return "key " + s.KeyID
	}
	return s.Subject + " (issuer " + s.Issuer + ")"
}

// Result is the outcome of checking a worker's signatures.
type Result struct {
	// Pattern and Level are the namespace policy applied (Pattern "" and
	// Level off when no pattern matched).
	Pattern string `json:"namespace"`
	Level   Level  `json:"level"`
	// Verified is set when a signature verified against a trusted
	// signer; Signer and Signature are then that one.
	Verified  bool       `json:"verified"`
	Signer    *Signer    `json:"signer,omitempty"`
	Signature *Signature `json:"-"`
	// Problem says why nothing verified ("" when one did).
	Problem string `json:"problem,omitempty"`
}

// Refused reports whether the result refuses the worker: enforce and not
// verified.
func (r Result) Refused() bool { return r.Level == Enforce && !r.Verified }

// Check verifies sigs as signatures over the artifact whose SHA-256 is
// subject (hex), with the signers a trusts. module, when not nil, is the
// artifact's bytes (needed for an Ed25519 message signature).
func (a Applied) Check(subject string, module []byte, sigs []Signature) Result {
	r := Result{Pattern: a.Pattern, Level: a.Level}
	if a.Pattern == "" {
		r.Level = Off
	}
	want, err := hex.DecodeString(subject)
	if err != nil || len(want) != sha256.Size {
		r.Problem = fmt.Sprintf("the artifact digest %q is not a SHA-256", subject)
		return r
	}
	if !a.HasSigners() {
		r.Problem = fmt.Sprintf("the trust policy names no signer for %s: add the organisation's public key (keys) or identity (identities) to namespaces[%q]", orAll(a.Pattern), a.Pattern)
		if len(sigs) == 0 {
			r.Problem = "unsigned, and " + r.Problem
		}
		return r
	}
	if len(sigs) == 0 {
		r.Problem = "unsigned: no signature was found for " + "sha256:" + subject + " (sign it with cosign sign --key, cosign sign-blob --bundle, or hall sign)"
		return r
	}
	var problems []string
	for i := range sigs {
		s := &sigs[i]
		signer, err := a.verifyOne(s, want, module)
		if err == nil {
			r.Verified, r.Signer, r.Signature, r.Problem = true, signer, s, ""
			return r
		}
		problems = append(problems, fmt.Sprintf("%s (%s): %v", s.Format, s.Source, err))
	}
	r.Problem = "no signature verifies against a signer trusted for " + orAll(a.Pattern) + ": " + strings.Join(problems, "; ")
	return r
}

func orAll(p string) string {
	if p == "" {
		return "this worker"
	}
	return p
}

func (a Applied) verifyOne(s *Signature, want, module []byte) (*Signer, error) {
	switch s.Format {
	case FormatBundle:
		return a.verifyBundle(s.Bundle, want, module)
	case FormatSimpleSigning:
		return a.verifySimple(s, want)
	}
	return nil, fmt.Errorf("unknown signature format %q", s.Format)
}

// ParseBundle checks a bundle's size and nesting and parses it.
func ParseBundle(data []byte) (*bundle.Bundle, error) {
	if len(data) > MaxSignatureBytes {
		return nil, fmt.Errorf("the bundle is %d bytes, over the limit of %d", len(data), MaxSignatureBytes)
	}
	if err := checkDepth(data, 32); err != nil {
		return nil, fmt.Errorf("the bundle is %v", err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("not a Sigstore bundle: %v", err)
	}
	return &b, nil
}

func (a Applied) verifyBundle(data, want, module []byte) (*Signer, error) {
	b, err := ParseBundle(data)
	if err != nil {
		return nil, err
	}
	art := verify.WithArtifactDigest("sha256", want)
	if module != nil {
		art = verify.WithArtifact(bytes.NewReader(module))
	}
	var errs []error
	vc, _ := b.VerificationContent()
	if vc != nil && vc.PublicKey() != nil {
		for _, k := range a.Keys {
			v, err := loadVerifier(k.Pub)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
				return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
			})
			ver, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
			if err != nil {
				return nil, err
			}
			if _, err := ver.Verify(b, verify.NewPolicy(art, verify.WithKey())); err != nil {
				errs = append(errs, fmt.Errorf("key %s: %v", k.ID, err))
				continue
			}
			return keySigner(k), nil
		}
		if len(a.Keys) == 0 {
			return nil, errors.New("signed with a key, and the namespace trusts no key")
		}
		return nil, errors.Join(errs...)
	}
	if len(a.ids) == 0 || a.root == nil {
		return nil, errors.New("signed with a certificate (keyless), and the namespace trusts no identity")
	}
	ver, err := verify.NewVerifier(a.root, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		return nil, err
	}
	for _, id := range a.ids {
		ci, err := verify.NewShortCertificateIdentity(id.Issuer, "", "", id.re.String())
		if err != nil {
			return nil, err
		}
		// A bundle read from a file is consumed by the artifact reader:
		// a fresh one per attempt.
		art := verify.WithArtifactDigest("sha256", want)
		if module != nil {
			art = verify.WithArtifact(bytes.NewReader(module))
		}
		res, err := ver.Verify(b, verify.NewPolicy(art, verify.WithCertificateIdentity(ci)))
		if err != nil {
			errs = append(errs, fmt.Errorf("identity %s (issuer %s): %v", id.Subject, id.Issuer, err))
			continue
		}
		s := &Signer{Issuer: id.Issuer}
		if res.Signature != nil && res.Signature.Certificate != nil {
			s.Subject = res.Signature.Certificate.SubjectAlternativeName
			s.Issuer = res.Signature.Certificate.Issuer
		}
		return s, nil
	}
	return nil, errors.Join(errs...)
}

func loadVerifier(pub crypto.PublicKey) (signature.Verifier, error) {
	return signature.LoadVerifier(pub, crypto.SHA256)
}

// simplePayload is the part of cosign's simple-signing payload checked.
type simplePayload struct {
	Critical struct {
		Image struct {
			Digest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

func (a Applied) verifySimple(s *Signature, want []byte) (*Signer, error) {
	if len(s.Payload) > MaxSignatureBytes || len(s.Sig) > 4096 {
		return nil, errors.New("the signature payload is over its limit")
	}
	if err := checkDepth(s.Payload, 32); err != nil {
		return nil, fmt.Errorf("the payload is %v", err)
	}
	var p simplePayload
	if err := json.Unmarshal(s.Payload, &p); err != nil {
		return nil, fmt.Errorf("the simple-signing payload is not JSON: %v", err)
	}
	if got, exp := p.Critical.Image.Digest, "sha256:"+hex.EncodeToString(want); got != exp {
		return nil, fmt.Errorf("the signature is over %s, not this artifact %s", got, exp)
	}
	if len(a.Keys) == 0 {
		return nil, errors.New("a key signature, and the namespace trusts no key")
	}
	sum := sha256.Sum256(s.Payload)
	for _, k := range a.Keys {
		switch pub := k.Pub.(type) {
		case *ecdsa.PublicKey:
			if ecdsa.VerifyASN1(pub, sum[:], s.Sig) {
				return keySigner(k), nil
			}
		case ed25519.PublicKey:
			if ed25519.Verify(pub, s.Payload, s.Sig) {
				return keySigner(k), nil
			}
		}
	}
	return nil, errors.New("the signature does not verify with any trusted key")
}

func keySigner(k Key) *Signer {
	s := &Signer{KeyID: k.ID}
	if der, err := x509.MarshalPKIXPublicKey(k.Pub); err == nil {
		s.PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	return s
}

// Reverify verifies again, offline, that sig is a signature by signer
// over the artifact whose SHA-256 is subject (hex): what hall audit
// verify does with each recorded provenance. A keyless signer needs the
// trusted root it was verified against: pass it as root (nil: such a
// signature is reported as not re-verifiable).
func Reverify(subject string, module []byte, sig Signature, signer Signer, trustedRoot []byte) error {
	switch {
	case signer.PublicKey != "":
		k, err := ParseKey([]byte(signer.PublicKey))
		if err != nil {
			return fmt.Errorf("the recorded signer key: %v", err)
		}
		if k.ID != signer.KeyID {
			return fmt.Errorf("the recorded key is %s, not the recorded key id %s", k.ID, signer.KeyID)
		}
		a := Applied{Pattern: "(recorded signer)", Level: Enforce, Keys: []Key{k}}
		if r := a.Check(subject, module, []Signature{sig}); !r.Verified {
			return errors.New(r.Problem)
		}
		return nil
	case signer.Issuer != "":
		if trustedRoot == nil {
			return errors.New("a keyless signature: re-verifying it needs the trusted root it was verified against")
		}
		tr, err := root.NewTrustedRootFromJSON(trustedRoot)
		if err != nil {
			return err
		}
		id := identity{Identity: Identity{Issuer: signer.Issuer, Subject: regexp.QuoteMeta(signer.Subject)}}
		id.re = regexp.MustCompile("^(?:" + id.Subject + ")$")
		a := Applied{Pattern: "(recorded signer)", Level: Enforce, ids: []identity{id}, root: tr}
		if r := a.Check(subject, module, []Signature{sig}); !r.Verified {
			return errors.New(r.Problem)
		}
		return nil
	}
	return errors.New("no signer is recorded")
}
