package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/registry"
)

// ChangeEnrollRecord is the kind of the change that seals a routing-only
// record enrolled PyHall's way (EnrollRecord): its artifact_hash was
// PyHall's record hash, verified, and no module is enrolled with it. The
// change's ArtifactHash is that record hash; its Digest the record's seal.
const ChangeEnrollRecord = "enroll_record"

// PyHallRecordHash is PyHall's compute_artifact_hash of a registry record
// (hall_api/server.py): "sha256:" and the hex SHA-256 of Python's
// json.dumps(record without artifact_hash, sort_keys=True,
// separators=(",", ":")), ASCII-escaped as Python escapes it, numbers as
// Python prints the int or float it read.
//
// # Notes
//
//   - record must be one JSON object. A string holding an escaped lone
//     surrogate (which Python keeps and Go cannot) is an error: such a
//     hash cannot be reproduced.
func PyHallRecordHash(record []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(record))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("not one JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", errors.New("not a JSON object")
	}
	if bytes.Contains(record, []byte(`\ud`)) || bytes.Contains(record, []byte(`\uD`)) {
		if err := checkSurrogates(record); err != nil {
			return "", err
		}
	}
	delete(m, "artifact_hash")
	var b bytes.Buffer
	if err := pyDumps(&b, m); err != nil {
		return "", err
	}
	return wcp.Digest(sha256.Sum256(b.Bytes())).String(), nil
}

// checkSurrogates refuses \uD800-\uDFFF escapes that do not form a pair.
func checkSurrogates(data []byte) error {
	s := string(data)
	for i := 0; i+5 < len(s); i++ {
		if s[i] == '\\' {
			if s[i+1] != 'u' {
				i++ // an escaped character; skip it
				continue
			}
			r, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
			if err != nil {
				continue
			}
			if r >= 0xd800 && r <= 0xdbff {
				if i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
					lo, err := strconv.ParseUint(s[i+8:i+12], 16, 16)
					if err == nil && lo >= 0xdc00 && lo <= 0xdfff {
						i += 11
						continue
					}
				}
				return errors.New("a string holds an unpaired surrogate escape, which the record hash cannot reproduce")
			}
			if r >= 0xdc00 && r <= 0xdfff {
				return errors.New("a string holds an unpaired surrogate escape, which the record hash cannot reproduce")
			}
			i += 5
		}
	}
	return nil
}

// pyDumps writes v as Python's json.dumps(v, sort_keys=True,
// separators=(",", ":")) does (ensure_ascii and allow_nan at their
// defaults).
func pyDumps(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		s, err := pyNumber(string(x))
		if err != nil {
			return err
		}
		b.WriteString(s)
	case string:
		pyString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := pyDumps(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		// Python sorts str keys by code point: UTF-8 byte order is the same.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			pyString(b, k)
			b.WriteByte(':')
			if err := pyDumps(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("unexpected JSON value %T", v)
	}
	return nil
}

// pyString writes s as Python's json encoder with ensure_ascii does:
// \" \\ \n \r \t \b \f, every other character outside ' '..'~' as
// \uXXXX (lower-case hex, UTF-16 surrogate pairs above U+FFFF).
func pyString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	u := func(r rune) {
		b.WriteString(`\u`)
		b.WriteByte(hex[r>>12&0xf])
		b.WriteByte(hex[r>>8&0xf])
		b.WriteByte(hex[r>>4&0xf])
		b.WriteByte(hex[r&0xf])
	}
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= ' ' && r <= '~':
			b.WriteByte(byte(r))
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			u(hi)
			u(lo)
		default:
			u(r)
		}
	}
	b.WriteByte('"')
}

// pyNumber is how Python prints the number a JSON literal decodes to: an
// int exactly, a float as repr() does.
func pyNumber(s string) (string, error) {
	if !strings.ContainsAny(s, ".eE") {
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return "", fmt.Errorf("number %q", s)
		}
		return n.String(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return "", fmt.Errorf("number %q: %w", s, err)
	}
	switch {
	case math.IsInf(f, 1):
		return "Infinity", nil
	case math.IsInf(f, -1):
		return "-Infinity", nil
	}
	// The shortest digits that read back as f, and the decimal point's
	// position: f = 0.d1d2… × 10^point.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	point := x + 1
	if point <= -4 || point > 16 {
		// repr's exponent form: 1e+16, 1.5e-05.
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := strconv.Itoa(abs(x))
		if len(es) < 2 {
			es = "0" + es
		}
		if x < 0 {
			es = "-" + es
		} else {
			es = "+" + es
		}
		return sign + m + "e" + es, nil
	}
	switch {
	case point <= 0:
		return sign + "0." + strings.Repeat("0", -point) + digits, nil
	case point >= len(digits):
		return sign + digits + strings.Repeat("0", point-len(digits)) + ".0", nil
	}
	return sign + digits[:point] + "." + digits[point:], nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// RecordHashError is a record whose artifact_hash is neither a stored
// module's digest nor the record's own PyHall record hash.
type RecordHashError struct {
	// Given is the record's artifact_hash; Expected the record hash PyHall
	// computes for the record as sent ("" when it cannot be computed).
	Given, Expected string
}

func (e *RecordHashError) Error() string {
	exp := "cannot be computed for this record"
	if e.Expected != "" {
		exp = "is " + e.Expected
	}
	return fmt.Sprintf("%s: the record's artifact_hash %s names no uploaded module, and is not the record's own hash either (PyHall's compute_artifact_hash of the record as sent %s): upload the module first (PUT /artifacts/%s), or, for a routing-only record, the record was changed after its hash was computed", ErrUnknownArtifact, e.Given, exp, e.Given)
}

// Unwrap makes errors.Is(err, ErrUnknownArtifact) hold.
func (e *RecordHashError) Unwrap() error { return ErrUnknownArtifact }

// EnrollRecord enrolls a routing-only record PyHall's way: the record's
// artifact_hash must be its PyHall record hash (PyHallRecordHash), which
// is verified as PyHall verifies it. The record is validated like any
// record, sealed in the change chain (kind ChangeEnrollRecord, with the
// verified hash) and written without artifact_hash — in the Hall,
// artifact_hash names the module that runs, and this record has none: it
// takes part in decisions, and a dispatch to it is refused (no module).
//
// An artifact_hash that does not match is a *RecordHashError; a record
// that does not validate an *EnrollError listing every problem.
func (h *Hall) EnrollRecord(ctx context.Context, record []byte, who string) (*EnrollResult, error) {
	ctx, exit, ok := h.life.enter(ctx)
	if !ok {
		return nil, ErrClosed
	}
	defer exit()
	if err := h.checkAdmin(ctx, actor(who)); err != nil {
		return nil, err
	}
	var head struct {
		ArtifactHash string `json:"artifact_hash"`
	}
	if err := json.Unmarshal(record, &head); err != nil {
		return nil, &EnrollError{Source: "record", Problems: []registry.Problem{{Message: "not a JSON object: " + err.Error()}}}
	}
	want, err := PyHallRecordHash(record)
	if err != nil {
		return nil, &EnrollError{Source: "record", Problems: []registry.Problem{{Field: "artifact_hash", Message: "the record hash cannot be computed: " + err.Error()}}}
	}
	if head.ArtifactHash != want {
		return nil, &RecordHashError{Given: head.ArtifactHash, Expected: want}
	}
	return h.enrollRoutingOnly(ctx, record, want, actor(who))
}

// enrollRoutingOnly validates, seals and installs a routing-only record
// whose PyHall record hash was verified.
func (h *Hall) enrollRoutingOnly(ctx context.Context, record []byte, recordHash, who string) (*EnrollResult, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(record, &m); err != nil {
		return nil, &EnrollError{Source: "record", Problems: []registry.Problem{{Message: "not a JSON object: " + err.Error()}}}
	}
	delete(m, "artifact_hash")
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	rec, err := registry.ValidateWith(raw, registry.Options{AllowUnknownFields: h.Config().AllowUnknownRecordFields})
	if err != nil {
		var re *registry.RecordError
		if errors.As(err, &re) {
			return nil, &EnrollError{Source: "record", Problems: re.Problems}
		}
		return nil, err
	}
	if probs := vetGrants(rec, h.opts); len(probs) > 0 {
		return nil, &EnrollError{Source: "record", Problems: probs}
	}
	rec.ArtifactHash = ""

	h.changeMu.Lock()
	defer h.changeMu.Unlock()
	old := h.snap.Load()
	bw, err := newBoundWorker(rec, old.max)
	if err != nil {
		return nil, err
	}
	res := &EnrollResult{RecordSource: "record", RecordDigest: bw.recordDigest, RoutingOnly: true, RecordHash: recordHash}
	if res.Record, err = cloneRecord(bw.rec); err != nil {
		return nil, err
	}
	if prev := old.workers[rec.WorkerID]; prev != nil && prev.hasModule {
		res.Replaced, res.PreviousArtifact = true, prev.rec.ArtifactHash
	}
	out, err := json.MarshalIndent(bw.rec, "", "  ")
	if err != nil {
		return nil, err
	}
	compact, err := json.Marshal(bw.rec)
	if err != nil {
		return nil, err
	}
	store, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	// Sealed before the file is written, as Enroll does.
	change := &ledger.Change{
		Kind: ChangeEnrollRecord, Subject: rec.WorkerID, Digest: bw.recordDigest.String(),
		ArtifactHash: recordHash, Body: compact, Actor: who, At: time.Now().UTC(),
	}
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	if err := store.RecordChange(ectx, change); err != nil {
		return nil, fmt.Errorf("enroll: recording the enrollment in the evidence ledger: %w; nothing was enrolled", err)
	}
	res.ChangeID = change.ChangeID
	if res.RecordPath, err = h.src.PutRecord(ctx, rec.WorkerID, append(out, '\n')); err != nil {
		return nil, fmt.Errorf("enroll: %w (the enrollment was sealed; enroll again to write the record)", err)
	}
	next := old.with(bw, who)
	h.swap(next)
	h.retire(ctx, next)
	for _, c := range rec.Capabilities {
		if !next.rules.Routes(c, rec.WorkerSpeciesID) {
			res.Unrouted = append(res.Unrouted, c)
		}
	}
	return res, nil
}
