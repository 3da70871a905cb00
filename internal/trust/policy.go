// Package trust is the Hall's trust policy (trust.json, docs/SUPPLY-CHAIN.md):
// per worker-id namespace pattern, a level (enforce, audit, off) and the
// signers trusted there — public keys (ECDSA P-256, Ed25519, PEM) and
// keyless identities (OIDC issuer and subject pattern, checked offline
// against an operator-provided Sigstore trusted root) — and the
// verification of the signatures the ecosystem makes (Sigstore bundles
// written by cosign or hall sign, and cosign's older simple-signing
// layout) with sigstore-go.
//
// It reads no file and no network: a policy is parsed from a
// self-contained document (Resolve inlines the key and root files a
// hand-written trust.json names), so that what the Hall seals is exactly
// what it verifies with.
package trust

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/wcphall/hall/host/wcp"
)

// Level is what a namespace's policy does with a worker's signature.
type Level string

// The levels.
const (
	// Enforce refuses a worker that is not validly signed by a signer of
	// its namespace, and denies its decisions once its signature no
	// longer verifies under the policy in force.
	Enforce Level = "enforce"
	// Audit enrolls such a worker, records the failure and warns.
	Audit Level = "audit"
	// Off checks nothing (a signature given is still recorded).
	Off Level = "off"
)

// Document is trust.json as written.
type Document struct {
	// Namespaces maps a worker-id pattern to its policy: "org.acme.*"
	// (every id under org.acme.), an exact worker id, or "*".
	Namespaces map[string]Namespace `json:"namespaces"`
	// TrustedRoot is the Sigstore trusted root (its JSON, or a path
	// relative to trust.json) that keyless identities are verified
	// against, offline. Required when any namespace lists identities.
	TrustedRoot json.RawMessage `json:"trusted_root,omitempty"`
}

// Namespace is one pattern's policy.
type Namespace struct {
	Level Level `json:"level"`
	// Keys are PEM public keys (ECDSA P-256 or Ed25519), or paths of PEM
	// files relative to trust.json.
	Keys []string `json:"keys,omitempty"`
	// Identities are keyless signers.
	Identities []Identity `json:"identities,omitempty"`
}

// Identity is a keyless signer: a certificate from the trusted root's
// CA whose OIDC issuer is Issuer and whose subject (SAN) matches the
// regular expression Subject (anchored).
type Identity struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

// Error is a trust.json that cannot be used; Field names the part.
type Error struct {
	Name, Field, Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("TRUST_INVALID: %s: %s: %s", e.Name, e.Field, e.Msg)
}

// Policy is a parsed trust policy. It is immutable.
type Policy struct {
	rules []rule // most specific first
	root  root.TrustedMaterial
}

type rule struct {
	pattern string
	level   Level
	keys    []Key
	ids     []identity
}

type identity struct {
	Identity
	re *regexp.Regexp
}

// Key is a trusted public key.
type Key struct {
	// ID is "sha256:<hex>" of the key's DER (SubjectPublicKeyInfo): how
	// the evidence names the signer.
	ID  string
	Pub crypto.PublicKey
}

// Resolve returns doc with every key and trusted-root path replaced by
// the content of the file it names, relative to dir, so that the result
// parses without reading anything. A document that names no file is
// returned unchanged, byte for byte (its digest is the stored one's).
func Resolve(doc []byte, dir string) ([]byte, error) {
	var d Document
	if err := strictJSON(doc, &d); err != nil {
		return nil, fmt.Errorf("TRUST_INVALID: %w", err)
	}
	changed := false
	for pat, ns := range d.Namespaces {
		for i, k := range ns.Keys {
			if strings.Contains(k, "-----BEGIN") {
				continue
			}
			changed = true
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
			if err != nil {
				return nil, fmt.Errorf("TRUST_INVALID: namespaces[%q].keys[%d]: %w: give a PEM public key file (cosign generate-key-pair writes cosign.pub)", pat, i, err)
			}
			ns.Keys[i] = string(b)
		}
		d.Namespaces[pat] = ns
	}
	var rootPath string
	if len(d.TrustedRoot) > 0 && json.Unmarshal(d.TrustedRoot, &rootPath) == nil {
		changed = true
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rootPath)))
		if err != nil {
			return nil, fmt.Errorf("TRUST_INVALID: trusted_root: %w: give the Sigstore trusted root JSON file", err)
		}
		d.TrustedRoot = b
	}
	if !changed {
		return doc, nil // already self-contained: kept byte for byte
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Parse parses a self-contained trust document (keys and trusted root
// inline: see Resolve). name is where it came from, for messages.
func Parse(name string, data []byte) (*Policy, error) {
	var d Document
	if err := strictJSON(data, &d); err != nil {
		return nil, &Error{Name: name, Field: "(document)", Msg: err.Error() + `: write {"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["keys/acme.pub"]}}}`}
	}
	if d.Namespaces == nil {
		return nil, &Error{Name: name, Field: "namespaces", Msg: `is required: {"namespaces": {"PATTERN": {"level": "enforce|audit|off", ...}}}`}
	}
	p := &Policy{}
	needRoot := false
	for pat, ns := range d.Namespaces {
		f := fmt.Sprintf("namespaces[%q]", pat)
		if err := checkPattern(pat); err != nil {
			return nil, &Error{Name: name, Field: f, Msg: err.Error()}
		}
		switch ns.Level {
		case Enforce, Audit, Off:
		default:
			return nil, &Error{Name: name, Field: f + ".level", Msg: fmt.Sprintf("%q: must be enforce, audit or off", ns.Level)}
		}
		r := rule{pattern: pat, level: ns.Level}
		for i, k := range ns.Keys {
			key, err := ParseKey([]byte(k))
			if err != nil {
				return nil, &Error{Name: name, Field: fmt.Sprintf("%s.keys[%d]", f, i), Msg: err.Error()}
			}
			r.keys = append(r.keys, key)
		}
		for i, id := range ns.Identities {
			if id.Issuer == "" || id.Subject == "" {
				return nil, &Error{Name: name, Field: fmt.Sprintf("%s.identities[%d]", f, i), Msg: "issuer and subject are both required"}
			}
			re, err := regexp.Compile("^(?:" + id.Subject + ")$")
			if err != nil {
				return nil, &Error{Name: name, Field: fmt.Sprintf("%s.identities[%d].subject", f, i), Msg: err.Error()}
			}
			r.ids = append(r.ids, identity{Identity: id, re: re})
			needRoot = true
		}
		p.rules = append(p.rules, r)
	}
	if needRoot {
		if len(d.TrustedRoot) == 0 {
			return nil, &Error{Name: name, Field: "trusted_root", Msg: "identities need the Sigstore trusted root their certificates chain to: set trusted_root to its file"}
		}
		tr, err := root.NewTrustedRootFromJSON(d.TrustedRoot)
		if err != nil {
			return nil, &Error{Name: name, Field: "trusted_root", Msg: err.Error()}
		}
		p.root = tr
	}
	slices.SortFunc(p.rules, func(a, b rule) int { return specificity(b.pattern) - specificity(a.pattern) })
	return p, nil
}

func strictJSON(data []byte, v any) error {
	if err := checkDepth(data, 32); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var patternRE = regexp.MustCompile(`^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?)$`)

func checkPattern(p string) error {
	if !patternRE.MatchString(p) {
		return fmt.Errorf("not a namespace pattern: write a worker id, a prefix ending in .* (org.acme.*) or *")
	}
	return nil
}

// specificity orders patterns: an exact id beats any prefix, a longer
// prefix beats a shorter one, and "*" comes last.
func specificity(p string) int {
	switch {
	case p == "*":
		return 0
	case strings.HasSuffix(p, ".*"):
		return 1 + 2*len(p)
	default:
		return 1 << 20
	}
}

func (r rule) matches(workerID string) bool {
	switch {
	case r.pattern == "*":
		return true
	case strings.HasSuffix(r.pattern, ".*"):
		return strings.HasPrefix(workerID, strings.TrimSuffix(r.pattern, "*"))
	default:
		return workerID == r.pattern
	}
}

// Applied is the policy a worker id falls under.
type Applied struct {
	// Pattern is the namespace pattern that matched ("" when none did:
	// no policy, the worker is not checked).
	Pattern string
	Level   Level
	Keys    []Key
	ids     []identity
	root    root.TrustedMaterial
}

// HasSigners reports whether the namespace trusts any signer.
func (a Applied) HasSigners() bool { return len(a.Keys) > 0 || len(a.ids) > 0 }

// For returns the policy of workerID: the most specific matching
// pattern's (Level Off and no Pattern when none matches).
func (p *Policy) For(workerID string) Applied {
	if p == nil {
		return Applied{Level: Off}
	}
	for _, r := range p.rules {
		if r.matches(workerID) {
			return Applied{Pattern: r.pattern, Level: r.level, Keys: r.keys, ids: r.ids, root: p.root}
		}
	}
	return Applied{Level: Off}
}

// ParseKey parses a PEM public key: ECDSA P-256 or Ed25519.
func ParseKey(pemBytes []byte) (Key, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return Key{}, errors.New("not a PEM public key (cosign generate-key-pair writes cosign.pub; hall sign --generate-key writes one)")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return Key{}, fmt.Errorf("not a PKIX public key: %v", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("an ECDSA key on %s: only P-256 is accepted", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return Key{}, fmt.Errorf("a %T: only ECDSA P-256 and Ed25519 keys are accepted", pub)
	}
	sum := sha256.Sum256(blk.Bytes)
	return Key{ID: "sha256:" + hex.EncodeToString(sum[:]), Pub: pub}, nil
}

// checkDepth refuses JSON nested deeper than max (a hostile document
// made to exhaust a parser's stack) without decoding it.
func checkDepth(data []byte, max int) error {
	depth := 0
	inStr, esc := false, false
	for _, c := range data {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return fmt.Errorf("nested deeper than %d levels", max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// Code is TRUST_INVALID.
func (e *Error) Code() wcp.Code { return wcp.CodeTrustInvalid }
