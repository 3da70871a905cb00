package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// referenceRequest is the JSON body of POST /enroll that names a registry
// artifact instead of a record: {"reference": "oci://…", "plain_http": true}.
type referenceRequest struct {
	Reference string `json:"reference"`
	PlainHTTP bool   `json:"plain_http"`
	AddRule   bool   `json:"add_rule"`
}

// isReferenceRequest reports whether a JSON enrollment body names a
// registry reference (a registry record has no "reference" member).
func isReferenceRequest(body []byte) (referenceRequest, bool) {
	var rr referenceRequest
	if json.Unmarshal(body, &rr) != nil || rr.Reference == "" {
		return rr, false
	}
	return rr, true
}

// enrollReference answers POST /enroll {"reference": "oci://…"}: the Hall
// resolves the tag once, fetches the artifact of that digest, checks its
// signatures against the trust policy and enrolls it (docs/SUPPLY-CHAIN.md).
func (s *Server) enrollReference(w http.ResponseWriter, r *http.Request, rr referenceRequest) {
	res, err := s.h.EnrollReference(context.WithoutCancel(r.Context()), host.EnrollReferenceRequest{
		Reference: rr.Reference, Registry: host.RegistryOptions{PlainHTTP: rr.PlainHTTP}, AddRule: rr.AddRule, Actor: tokenActor(r),
	})
	existed := false
	if res != nil && res.Replaced {
		existed = true
	}
	s.enrolled(w, r, res, err, existed)
}

// supplyChainRefused writes the refusal of an enrollment that the trust
// policy or the registry refused (TRUST_REFUSED, TRUST_INVALID, OCI_*),
// with the status of the code table, and reports whether err was one.
func supplyChainRefused(w http.ResponseWriter, r *http.Request, err error) bool {
	code, ok := wcp.CodeOf(err)
	if !ok {
		return false
	}
	switch code {
	case wcp.CodeTrustRefused, wcp.CodeTrustInvalid, wcp.CodeOCIReferenceInvalid, wcp.CodeOCIFetchFailed, wcp.CodeOCIArtifactRefused:
	default:
		return false
	}
	writeError(w, r, errf(code.HTTPStatus(), string(code), strings.TrimPrefix(err.Error(), string(code)+": ")))
	return true
}

// getTrust answers GET /admin/trust: the trust policy in force (keys
// inline), its digest as the ETag; 404 when there is none.
func (s *Server) getTrust(w http.ResponseWriter, r *http.Request) {
	doc, digest := s.h.TrustDocument()
	w.Header().Set("ETag", `"`+digest+`"`)
	if doc == nil {
		writeError(w, r, errf(http.StatusNotFound, CodeNotFound, "no trust policy (trust.json) is in force: workers are enrolled without checking who signed them; PUT /admin/trust sets one"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
}

// putTrust answers PUT /admin/trust: the body (self-contained: keys and
// trusted root inline) replaces the trust policy when it parses; the
// change is recorded. If-Match, when sent, must name the policy in force
// (its ETag; "none" when there is none).
func (s *Server) putTrust(w http.ResponseWriter, r *http.Request) {
	if e := requireMedia(r, "application/json"); e != nil {
		writeError(w, r, e)
		return
	}
	body, e := readBody(w, r, s.cfg.MaxBody)
	if e != nil {
		writeError(w, r, e)
		return
	}
	ifMatch := strings.Trim(strings.TrimSpace(r.Header.Get("If-Match")), `"`)
	if !json.Valid(body) {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidJSON, "the trust policy is not valid JSON"))
		return
	}
	digest, err := s.h.SetTrust(context.WithoutCancel(r.Context()), body, ifMatch, tokenActor(r))
	switch {
	case err == nil:
	case adminRefused(w, r, err), supplyChainRefused(w, r, err):
		return
	case errors.Is(err, host.ErrPreconditionFailed):
		_, cur := s.h.TrustDocument()
		w.Header().Set("ETag", `"`+cur+`"`)
		writeError(w, r, errf(http.StatusPreconditionFailed, CodePreconditionFailed, "If-Match does not name the trust policy in force; nothing was changed: GET /admin/trust and retry with its ETag"))
		return
	default:
		s.log.Error("hall: replacing the trust policy failed", "request_id", requestID(r), "error", err)
		writeError(w, r, errf(http.StatusInternalServerError, CodeInternal, "the trust policy could not be replaced (see the server log under request id "+requestID(r)+")"))
		return
	}
	s.log.Info("hall: trust policy replaced", "request_id", requestID(r), "trust_digest", digest, "token_id", principal(r).ID)
	w.Header().Set("ETag", `"`+digest+`"`)
	writeJSON(w, http.StatusOK, map[string]any{"trust_digest": digest})
}
