package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/trust"
)

// ChangeProvenance is the ledger change kind that records, just before a
// worker's enrollment change, where its module came from and who signed
// it: Subject the worker id, Digest the sealed record's digest,
// ArtifactHash the module's, Body a ProvenanceBody.
const ChangeProvenance = "provenance"

// ChangeTrust is the ledger change kind recorded when the trust policy is
// replaced through the Hall (SetTrust): Subject the document's name,
// Digest the digest of its bytes ("none" when removed), Body the document.
const ChangeTrust = "trust"

// ProvenanceBody is the body of a provenance change (docs/EVIDENCE.md,
// docs/SUPPLY-CHAIN.md).
type ProvenanceBody struct {
	// Source is where the module came from: an oci:// reference pinned to
	// the manifest digest it resolved to, or a file.
	Source string `json:"source"`
	// Subject is the digest the signature covers: the manifest's for a
	// registry artifact, the module's for a file.
	Subject string `json:"subject"`
	// Trust is the trust policy's verdict at enrollment.
	Trust trust.Result `json:"trust"`
	// SignatureDigest is the digest of the signature that verified (or,
	// when none did, "" ).
	SignatureDigest string `json:"signature_digest,omitempty"`
	// Signatures are every signature found (at most maxSignatures), the
	// verified one first: what `hall audit verify` re-verifies.
	Signatures []trust.Signature `json:"signatures,omitempty"`
	// TrustPolicy is the digest of the trust policy applied ("none").
	TrustPolicy string `json:"trust_policy"`
}

// maxSignatures bounds the signatures kept for one artifact: a registry
// may list any number of referrers.
const maxSignatures = 8

// provenance is a worker's recorded ProvenanceBody with its change.
type provenance struct {
	body     ProvenanceBody
	changeID string
	hash     string // the change's hash: what sameAs compares
}

func (p *provenance) digest() string {
	if p == nil {
		return ""
	}
	return p.hash
}

// parseTrust compiles the stored trust policy once per snapshot.
func parseTrust(d Doc) (*trust.Policy, []byte, error) {
	if !d.Present {
		return nil, nil, nil
	}
	p, err := trust.Parse(d.Name, d.Data)
	if err != nil {
		return nil, nil, err
	}
	return p, d.Data, nil
}

// attachProvenance gives each worker of s its latest provenance change,
// when that change is for the record and module in force.
func attachProvenance(ctx context.Context, store ledger.Store, s *snapshot) error {
	changes, err := store.Changes(ctx, ChangeProvenance)
	if err != nil {
		return fmt.Errorf("reading provenance from the evidence ledger: %w", err)
	}
	latest := map[string]ledger.Change{}
	for _, c := range changes { // chain order: the last one wins
		latest[c.Subject] = c
	}
	for id, w := range s.workers {
		c, ok := latest[id]
		if !ok || c.Digest != w.recordDigest.String() || c.ArtifactHash != w.moduleRef {
			continue
		}
		var body ProvenanceBody
		if json.Unmarshal(c.Body, &body) != nil {
			continue
		}
		w.prov = &provenance{body: body, changeID: c.ChangeID, hash: c.Hash}
	}
	return nil
}

type verdictCache struct {
	m sync.Map // worker id -> trust.Result
}

// verdict is the trust policy in force's verdict on w, computed once per
// snapshot from the signatures recorded at its enrollment.
func (s *snapshot) verdict(h *Hall, w *boundWorker) trust.Result {
	if v, ok := s.verdicts.m.Load(w.rec.WorkerID); ok {
		return v.(trust.Result)
	}
	a := s.signers.For(w.rec.WorkerID)
	var r trust.Result
	switch {
	case s.signers == nil || a.Pattern == "":
		r = trust.Result{Level: trust.Off}
	case w.prov == nil:
		r = a.Check(w.module.Hex(), nil, nil)
		r.Problem = "no signature was recorded when it was enrolled: " + r.Problem
	default:
		subject := w.prov.body.Subject
		if d, err := wcp.ParseDigest(subject); err == nil {
			subject = d.Hex()
		}
		// A signature over the module itself (a file's bundle) is
		// verified against its bytes, as at enrollment.
		var module []byte
		if subject == w.moduleHex && h != nil {
			if store, err := h.artifacts(); err == nil {
				module, _ = store.Get(context.Background(), w.module)
			}
		}
		r = a.Check(subject, module, w.prov.body.Signatures)
	}
	s.verdicts.m.Store(w.rec.WorkerID, r)
	return r
}

// signer is who signed the module p runs, as the trust policy of p's
// snapshot verified it when p was decided ("" when none applied or none
// verified). The verdict is the one the decision used (cached per
// snapshot); none is computed here.
func (p *Plan) signer() string {
	if p.snap.signers == nil {
		return ""
	}
	v, ok := p.snap.verdicts.m.Load(p.w.rec.WorkerID)
	if !ok {
		return ""
	}
	if r := v.(trust.Result); r.Verified && r.Signer != nil {
		return r.Signer.String()
	}
	return ""
}

// untrusted is why w may not run under s's trust policy ("" when it may).
func (s *snapshot) untrusted(h *Hall, w *boundWorker) string {
	if s.signers == nil {
		return ""
	}
	r := s.verdict(h, w)
	if !r.Refused() {
		return ""
	}
	return fmt.Sprintf("The worker %s is under the enforce trust policy of %s and its signature does not verify under the policy in force (%s); it was not run: enroll a module signed by a trusted signer, or change trust.json.", w.rec.WorkerID, r.Pattern, r.Problem)
}

// denyUntrusted turns an allowed decision into DENY_WORKER_UNTRUSTED.
func denyUntrusted(dec *wcp.RouteDecision, msg string) {
	species := string(dec.SelectedWorkerSpeciesID)
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{Code: wcp.DenyWorkerUntrusted, Message: msg, WorkerSpeciesID: &species}
	dec.SelectedWorkerSpeciesID = ""
	dec.ArtifactHash = ""
	dec.TelemetryEnvelopes = append(dec.TelemetryEnvelopes, wcp.Event{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp, CorrelationID: dec.CorrelationID,
		TenantID: dec.TenantID, CapabilityID: dec.CapabilityID, DenyCode: wcp.DenyWorkerUntrusted, DenyMessage: msg, MatchedRuleID: dec.MatchedRuleID,
	})
}

// TrustError is an enrollment the trust policy refused. Nothing was
// enrolled.
type TrustError struct {
	WorkerID string
	Result   trust.Result
}

func (e *TrustError) Error() string {
	fix := "sign it with a key the policy trusts (cosign sign --key, cosign sign-blob --bundle, hall sign) or add its signer to trust.json"
	return fmt.Sprintf("TRUST_REFUSED: %s falls under the enforce trust policy of %q: %s; nothing was enrolled: %s", e.WorkerID, e.Result.Pattern, e.Result.Problem, fix)
}

// Code is TRUST_REFUSED.
func (e *TrustError) Code() wcp.Code { return wcp.CodeTrustRefused }

// Signed is what an enrollment knows of the module's origin and
// signatures.
type Signed struct {
	// Source is where the module came from (an oci:// reference pinned to
	// its digest, or a file path).
	Source string
	// Subject is the digest the signatures cover ("sha256:<hex>"): the
	// manifest's for a registry artifact; "" for the module's own digest.
	Subject string
	// Signatures found for Subject.
	Signatures []trust.Signature
	// Problems are signatures that were found but could not be read
	// (over their size limit, malformed): reported when nothing verifies.
	Problems []string
}

// checkTrust applies the trust policy in force to an enrollment of rec's
// worker with module digest. It returns the provenance body to record
// (nil when there is neither a trust policy nor anything to record) and
// an error when the policy refuses the worker.
func (h *Hall) checkTrust(s *snapshot, workerID string, module wcp.Digest, moduleBytes []byte, signed *Signed) (*ProvenanceBody, error) {
	if s.signers == nil {
		h.noTrustOnce.Do(func() {
			h.log.Warn("hall: no trust.json: workers are enrolled without checking who signed them (docs/SUPPLY-CHAIN.md)")
		})
		if signed == nil {
			return nil, nil
		}
	}
	body := &ProvenanceBody{TrustPolicy: noPart}
	if s.src.trustDoc != nil {
		body.TrustPolicy = digestOf(s.src.trustDoc)
	}
	var sigs []trust.Signature
	body.Subject = module.String()
	if signed != nil {
		body.Source = signed.Source
		if signed.Subject != "" {
			body.Subject = signed.Subject
		}
		sigs = signed.Signatures
	}
	subject := module.Hex()
	var art []byte
	if d, err := wcp.ParseDigest(body.Subject); err == nil {
		subject = d.Hex()
	}
	if body.Subject == module.String() {
		art = moduleBytes
	}
	a := s.signers.For(workerID)
	if len(sigs) > maxSignatures {
		sigs = sigs[:maxSignatures]
	}
	r := a.Check(subject, art, sigs)
	if !r.Verified && signed != nil && len(signed.Problems) > 0 && r.Problem != "" {
		r.Problem += " (also found and refused: " + strings.Join(signed.Problems, "; ") + ")"
	}
	body.Trust = r
	if r.Verified {
		body.SignatureDigest = r.Signature.Digest()
		// The verified one first, then the others.
		out := []trust.Signature{*r.Signature}
		for _, sg := range sigs {
			if sg.Digest() != body.SignatureDigest {
				out = append(out, sg)
			}
		}
		sigs = out
	}
	body.Signatures = boundSignatures(sigs, r.Verified)
	if r.Refused() {
		return nil, &TrustError{WorkerID: workerID, Result: r}
	}
	if r.Level == trust.Audit && !r.Verified {
		h.log.Warn("hall: trust policy (audit): enrolled although its signature does not verify", "worker_id", workerID, "namespace", r.Pattern, "problem", r.Problem)
	}
	return body, nil
}

// maxRecordedSignatureBytes bounds what a provenance change keeps of the
// signatures that did not verify: a registry may attach anything to an
// artifact, and the evidence ledger is not its mirror.
const maxRecordedSignatureBytes = 64 << 10

// boundSignatures keeps the verified signature (first) whole and the
// others while they fit maxRecordedSignatureBytes.
func boundSignatures(sigs []trust.Signature, verified bool) []trust.Signature {
	var out []trust.Signature
	total := 0
	for i, sg := range sigs {
		n := len(sg.Bundle) + len(sg.Payload) + len(sg.Sig)
		if i == 0 && verified {
			out = append(out, sg)
			continue
		}
		if total+n > maxRecordedSignatureBytes {
			continue
		}
		total += n
		out = append(out, sg)
	}
	return out
}

// recordProvenance records body as the provenance change of the
// enrollment about to be recorded.
func recordProvenance(ctx context.Context, store ledger.Store, workerID, recordDigest, artifact, who string, body *ProvenanceBody) (*ledger.Change, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	c := &ledger.Change{Kind: ChangeProvenance, Subject: workerID, Digest: recordDigest, ArtifactHash: artifact, Body: raw, Actor: who, At: time.Now().UTC()}
	if err := store.RecordChange(ctx, c); err != nil {
		return nil, fmt.Errorf("enroll: recording the module's provenance in the evidence ledger: %w; nothing was enrolled", err)
	}
	return c, nil
}

// TrustDocument returns the trust policy in force as stored (nil when
// there is none) with its digest ("none" when absent).
func (h *Hall) TrustDocument() ([]byte, string) {
	s := h.snap.Load()
	if s.src.trustDoc == nil {
		return nil, noPart
	}
	return append([]byte(nil), s.src.trustDoc...), digestOf(s.src.trustDoc)
}

// SetTrust replaces the trust policy (nil data removes it) after checking
// that it parses. data must be self-contained (keys and trusted root
// inline: trust.Resolve does that for a file). The change is recorded (a
// change of kind "trust"), stored through the snapshot source, and comes
// into force as a new snapshot, itself recorded before the next
// decision. ifMatch, when not "", must name the stored document's digest
// (or "none").
func (h *Hall) SetTrust(ctx context.Context, data []byte, ifMatch, who string) (string, error) {
	if h.isClosed() {
		return "", ErrClosed
	}
	name := "trust.json"
	if data != nil {
		if _, err := trust.Parse(name, data); err != nil {
			return "", err
		}
	}
	if err := h.checkAdmin(ctx, actor(who)); err != nil {
		return "", err
	}
	cur, err := h.src.Get(ctx, DocTrust)
	if err != nil {
		return "", err
	}
	if err := CheckIfMatch(cur, ifMatch); err != nil {
		return "", err
	}
	store, err := h.evidenceStore()
	if err != nil {
		return "", err
	}
	digest := noPart
	var body json.RawMessage = json.RawMessage(`"none"`)
	if data != nil {
		digest, body = digestOf(data), compactJSON(data)
	}
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	if cur.Name != "" {
		name = cur.Name
	}
	if err := store.RecordChange(ectx, &ledger.Change{Kind: ChangeTrust, Subject: name, Digest: digest, Body: body, Actor: actor(who), At: time.Now().UTC()}); err != nil {
		return "", fmt.Errorf("recording the trust policy change in the evidence ledger: %w; the trust policy was not changed", err)
	}
	if err := h.src.Put(ctx, DocTrust, data, ifMatch); err != nil {
		return "", err
	}
	if err := h.Reload(ctx); err != nil {
		return "", err
	}
	return digest, nil
}

// IsTrustError reports whether err is a trust refusal or an invalid
// trust.json, for callers that map codes.
func IsTrustError(err error) bool {
	var te *TrustError
	var ti *trust.Error
	return errors.As(err, &te) || errors.As(err, &ti)
}

// ProvenanceCheck is what VerifyProvenance found.
type ProvenanceCheck struct {
	// Checked counts the recorded signatures verified again.
	Checked int
	// Keyless counts keyless signatures not verified again (that needs
	// the trusted root they were verified against).
	Keyless int
	// Breaks say which provenance entries no longer verify.
	Breaks []ProvenanceBreak
}

// ProvenanceBreak is a provenance change whose signature does not verify.
type ProvenanceBreak struct {
	ChangeID, WorkerID, Reason string
}

// VerifyProvenance verifies again, offline, every signature a provenance
// change recorded as verified: the stored bundle (or simple-signing
// signature) against the recorded signer's key, over the recorded
// subject digest. changes are the ledger's provenance changes.
//
// modules, when not nil, returns a module's bytes by digest (nil when not
// held): a signature over the module itself is then verified against
// its bytes, as at enrollment.
func VerifyProvenance(changes []ledger.Change, modules func(wcp.Digest) []byte) ProvenanceCheck {
	var out ProvenanceCheck
	for _, c := range changes {
		var b ProvenanceBody
		if err := json.Unmarshal(c.Body, &b); err != nil {
			out.Breaks = append(out.Breaks, ProvenanceBreak{c.ChangeID, c.Subject, fmt.Sprintf("provenance of %s: the body does not decode: %v", c.Subject, err)})
			continue
		}
		if !b.Trust.Verified || b.Trust.Signer == nil {
			continue
		}
		if len(b.Signatures) == 0 || b.Signatures[0].Digest() != b.SignatureDigest {
			out.Breaks = append(out.Breaks, ProvenanceBreak{c.ChangeID, c.Subject, fmt.Sprintf("provenance of %s: the verified signature %s is not the one stored", c.Subject, b.SignatureDigest)})
			continue
		}
		if b.Trust.Signer.PublicKey == "" {
			out.Keyless++
			continue
		}
		subject := b.Subject
		if d, err := wcp.ParseDigest(subject); err == nil {
			subject = d.Hex()
		}
		var module []byte
		if d, err := wcp.ParseDigest(b.Subject); err == nil && modules != nil && b.Subject == c.ArtifactHash {
			module = modules(d)
		}
		if err := trust.Reverify(subject, module, b.Signatures[0], *b.Trust.Signer, nil); err != nil {
			out.Breaks = append(out.Breaks, ProvenanceBreak{c.ChangeID, c.Subject, fmt.Sprintf("provenance of %s: the recorded signature %s no longer verifies: %v", c.Subject, b.SignatureDigest, err)})
			continue
		}
		out.Checked++
	}
	return out
}
