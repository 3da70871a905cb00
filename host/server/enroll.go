package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/artifact"
	"github.com/wcphall/hall/internal/wasmmod"
)

// enroll answers POST /enroll: a JSON registry record whose artifact_hash
// names an uploaded module (the seed's request), or multipart/form-data
// with the parts "record" and "module".
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	switch mediaType(r) {
	case "application/json":
		s.enrollJSON(w, r)
	case "multipart/form-data":
		s.enrollMultipart(w, r)
	default:
		writeError(w, r, requireMedia(r, "application/json", "multipart/form-data"))
	}
}

type recordHead struct {
	WorkerID     string `json:"worker_id"`
	ArtifactHash string `json:"artifact_hash"`
}

func (s *Server) enrollJSON(w http.ResponseWriter, r *http.Request) {
	body, e := readBody(w, r, s.cfg.MaxBody)
	if e != nil {
		writeError(w, r, e)
		return
	}
	if !json.Valid(body) {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidJSON, "the registry record is not valid JSON"))
		return
	}
	if rr, ok := isReferenceRequest(body); ok {
		s.enrollReference(w, r, rr)
		return
	}
	var head recordHead
	_ = json.Unmarshal(body, &head) // EnrollStored reports a record that is not an object
	_, existed := s.h.Registry().Record(head.WorkerID)
	res, err := s.h.EnrollStored(context.WithoutCancel(r.Context()), body, tokenActor(r))
	s.enrolled(w, r, res, err, existed)
}

func (s *Server) enrollMultipart(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > s.cfg.MaxUpload {
		writeError(w, r, tooLarge(s.cfg.MaxUpload))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "not a multipart/form-data body: "+err.Error()))
		return
	}
	var record, module []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, r, multipartError(err, s.cfg.MaxUpload))
			return
		}
		name := p.FormName()
		var dst *[]byte
		limit := s.cfg.MaxUpload
		switch name {
		case "record":
			dst, limit = &record, s.cfg.MaxBody
		case "module":
			dst = &module
		default:
			writeError(w, r, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, fmt.Sprintf("unexpected part %q: send \"record\" (the registry record JSON) and \"module\" (the .wasm)", name)).field(name))
			return
		}
		if *dst != nil {
			writeError(w, r, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "part "+name+" is given twice").field(name))
			return
		}
		b, err := readPart(p, limit)
		if err != nil {
			writeError(w, r, multipartError(err, limit).field(name))
			return
		}
		*dst = b
	}
	if module == nil {
		writeError(w, r, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "the part \"module\" (the .wasm) is required").field("module"))
		return
	}
	var head recordHead
	if record != nil {
		if !json.Valid(record) {
			writeError(w, r, errf(http.StatusBadRequest, CodeInvalidJSON, "the part \"record\" is not valid JSON").field("record"))
			return
		}
		_ = json.Unmarshal(record, &head)
	}
	// A record generated for other bytes is tampering, not a typo: refuse
	// it with WCP's code before anything is stored.
	if head.ArtifactHash != "" {
		got := wcp.Digest(sha256.Sum256(module))
		if head.ArtifactHash != got.String() {
			writeError(w, r, errf(http.StatusConflict, string(wcp.DenyWorkerTampered),
				fmt.Sprintf("the record's artifact_hash %s is not the module's digest %s; nothing was enrolled", head.ArtifactHash, got)).field("artifact_hash"))
			return
		}
	}
	workerID := head.WorkerID
	if record == nil {
		// The record comes from the module's wcp.record section: whether
		// its worker id is enrolled decides 200 "updated" or 201, as for
		// a record part (docs/HTTP.md; issue 27).
		if sec, ok, err := wasmmod.CustomSection(module, host.RecordSection); ok && err == nil {
			var embedded recordHead
			if json.Unmarshal(sec, &embedded) == nil {
				workerID = embedded.WorkerID
			}
		}
	}
	_, existed := s.h.Registry().Record(workerID)
	res, err := s.h.Enroll(context.WithoutCancel(r.Context()), host.EnrollRequest{Module: module, Record: record, RecordSource: "record", Actor: tokenActor(r)})
	if err == nil && workerID == "" {
		existed = false
	}
	s.enrolled(w, r, res, err, existed)
}

// adminRefused writes the 403 of an admin action the Hall refused because
// the token's admin issuance is not evidence (ADMIN_TOKEN_UNRECORDED) and
// reports whether err was one.
func adminRefused(w http.ResponseWriter, r *http.Request, err error) bool {
	var coded interface{ Code() wcp.Code }
	if !errors.As(err, &coded) || coded.Code() != wcp.CodeAdminTokenUnrecorded {
		return false
	}
	writeError(w, r, errf(http.StatusForbidden, string(wcp.CodeAdminTokenUnrecorded), strings.TrimPrefix(err.Error(), string(wcp.CodeAdminTokenUnrecorded)+": ")))
	return true
}

// tokenActor is who acts, as the evidence ledger records it: the
// token, never its secret.
func tokenActor(r *http.Request) string { return "token:" + principal(r).ID }

// errPartTooLarge is returned by readPart for a part over its limit.
var errPartTooLarge = errors.New("part too large")

func readPart(p *multipart.Part, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errPartTooLarge
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func multipartError(err error, limit int64) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errPartTooLarge) {
		return tooLarge(limit)
	}
	return errf(http.StatusBadRequest, CodeInvalidRequest, "reading the multipart body: "+err.Error())
}

func enrollmentID() string {
	var b [4]byte
	rand.Read(b[:])
	return "enr_" + hex.EncodeToString(b[:])
}

// enrolled writes the seed's enrollment response, or the refusal.
func (s *Server) enrolled(w http.ResponseWriter, r *http.Request, res *host.EnrollResult, err error, existed bool) {
	var te *artifact.TamperedError
	var ee *host.EnrollError
	switch {
	case err == nil:
	case adminRefused(w, r, err), supplyChainRefused(w, r, err):
		return
	case errors.Is(err, host.ErrUnknownArtifact):
		writeError(w, r, errf(http.StatusUnprocessableEntity, CodeArtifactUnknown, err.Error()).field("artifact_hash"))
		return
	case errors.As(err, &te):
		s.log.Error("hall: stored module tampered", "request_id", requestID(r), "error", te)
		writeError(w, r, errf(http.StatusConflict, string(wcp.DenyWorkerTampered), "the stored module no longer matches the record's artifact_hash "+te.Want.String()+"; nothing was enrolled (upload the module again)").field("artifact_hash"))
		return
	case errors.As(err, &ee):
		code := CodeRecordInvalid
		switch {
		case ee.Code() == wcp.CodeRecordMismatch:
			// The module's embedded record is authoritative: a supplied
			// record must say the same.
			code = string(ee.Code())
		case ee.Source == "module":
			code = CodeModuleInvalid
		}
		e := errf(http.StatusUnprocessableEntity, code, strings.ReplaceAll(ee.Error(), "\n", "; "))
		for _, p := range ee.Problems {
			e.Problems = append(e.Problems, wcp.FieldError{Field: p.Field, Message: p.Message})
		}
		if len(e.Problems) > 0 {
			e.Field = e.Problems[0].Field
		}
		writeError(w, r, e)
		return
	default:
		s.log.Error("hall: enrollment failed", "request_id", requestID(r), "error", err)
		writeError(w, r, unavailableOr(err, errf(http.StatusInternalServerError, CodeInternal, "enrollment failed (see the server log under request id "+requestID(r)+")")))
		return
	}
	id := enrollmentID()
	logged := res.ArtifactHash.String()
	if res.RoutingOnly {
		logged = "routing-only, record hash " + res.RecordHash
	}
	s.log.Info("hall: enrolled", "request_id", requestID(r), "enrollment_id", id, "worker_id", res.Record.WorkerID,
		"artifact_hash", logged, "token_id", principal(r).ID, "replaced", res.Replaced)
	body := map[string]any{
		"enrolled":               true,
		"enrollment_id":          id,
		"worker_id":              res.Record.WorkerID,
		"worker_species_id":      res.Record.WorkerSpeciesID,
		"artifact_hash":          res.ArtifactHash.String(),
		"artifact_hash_verified": true,
		"enrolled_at":            now(),
		"unrouted_capabilities":  nonNil(res.Unrouted),
		// What the enrollment granted and sealed: the record may come from
		// the module itself, so the caller sees the envelope here.
		"record_digest":      res.RecordDigest.String(),
		"change_id":          res.ChangeID,
		"privilege_envelope": res.Record.Granted(),
	}
	if len(res.Record.Config) > 0 {
		body["config"] = res.Record.Config
	}
	if res.Provenance != nil {
		body["provenance"] = res.Provenance
	}
	if res.RoutingOnly {
		// Enrolled PyHall's way (docs/PYHALL.md): artifact_hash was the
		// record's own hash, verified; no module, so it decides and never
		// dispatches.
		body["artifact_hash"] = res.RecordHash
		body["routing_only"] = true
		body["record_hash_verified"] = true
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
		body["updated"] = true
	}
	writeJSON(w, status, body)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// putArtifact answers PUT /artifacts/sha256:<hex>: the body must hash to
// the digest in the path and be a WebAssembly module, or nothing is stored.
func (s *Server) putArtifact(w http.ResponseWriter, r *http.Request) {
	raw, ok := pathParam(r, "digest")
	want, err := wcp.ParseDigest(raw)
	if !ok || err != nil {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidDigest, fmt.Sprintf("%q is not sha256:<64 lowercase hex>", raw)).field("digest"))
		return
	}
	if e := requireMedia(r, "application/wasm", "application/octet-stream"); e != nil {
		writeError(w, r, e)
		return
	}
	body, e := readBody(w, r, s.cfg.MaxUpload)
	if e != nil {
		writeError(w, r, e)
		return
	}
	if got := wcp.Digest(sha256.Sum256(body)); got != want {
		writeError(w, r, errf(http.StatusConflict, string(wcp.DenyWorkerTampered),
			fmt.Sprintf("the body hashes to %s, not %s; nothing was stored", got, want)).field("digest"))
		return
	}
	if _, err := wasmmod.Inspect(body); err != nil {
		writeError(w, r, errf(http.StatusUnprocessableEntity, CodeModuleInvalid, "not a WebAssembly module: "+err.Error()+"; nothing was stored"))
		return
	}
	d, err := s.h.PutArtifact(body, want)
	if err != nil {
		s.log.Error("hall: storing artifact failed", "request_id", requestID(r), "error", err)
		writeError(w, r, unavailableOr(err, errf(http.StatusInternalServerError, CodeInternal, "the module could not be stored (see the server log under request id "+requestID(r)+")")))
		return
	}
	s.log.Info("hall: artifact stored", "request_id", requestID(r), "artifact_hash", d.String(), "size", len(body), "token_id", principal(r).ID)
	writeJSON(w, http.StatusCreated, map[string]any{"stored": true, "artifact_hash": d.String(), "size": len(body)})
}
