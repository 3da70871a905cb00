package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/wcphall/hall/host/wcp"
)

// Error codes of the HTTP API that are not WCP deny codes or sandbox
// outcome codes (docs/HTTP.md lists them all), defined from wcp.Codes, the
// one table of codes, whose rows also give their usual HTTP status.
const (
	CodeUnauthenticated  = string(wcp.CodeUnauthenticated)
	CodeForbidden        = string(wcp.CodeForbidden)
	CodeTenantMismatch   = string(wcp.CodeTenantMismatch)
	CodeInvalidJSON      = string(wcp.CodeInvalidJSON)
	CodeInvalidInput     = string(wcp.CodeInvalidInput)
	CodeInvalidRequest   = string(wcp.CodeInvalidRequest)
	CodeBodyTooLarge     = string(wcp.CodeBodyTooLarge)
	CodeUnsupportedMedia = string(wcp.CodeUnsupportedMedia)
	CodeNotFound         = string(wcp.CodeNotFound)
	CodeMethodNotAllowed = string(wcp.CodeMethodNotAllowed)
	CodeWorkerNotFound   = string(wcp.CodeWorkerNotFound)
	CodeReceiptNotFound  = string(wcp.CodeReceiptNotFound)
	CodeInvalidDigest    = string(wcp.CodeInvalidDigest)
	CodeArtifactUnknown  = string(wcp.CodeArtifactUnknown)
	CodeModuleInvalid    = string(wcp.CodeModuleInvalid)
	CodeRecordInvalid    = string(wcp.CodeRecordInvalid)
	CodeHallOffline      = string(wcp.CodeHallOffline)
	CodeSaturated        = string(wcp.CodeHallSaturated)
	CodeEvidence         = string(wcp.CodeEvidenceUnavailable)
	CodeInternal         = string(wcp.CodeInternal)
	// CodeRegistryUnavailable answers PyHall's registry proxies (pyhall.go).
	CodeRegistryUnavailable = string(wcp.CodeRegistryUnavailable)
	// CodeDecisionConflict refuses a changed decision under a recorded
	// decision_id (POST /decisions/ingest).
	CodeDecisionConflict = string(wcp.CodeDecisionConflict)
)

// apiError is an error response. Extra members go beside "error" in the
// body (a denied dispatch carries its decision there).
type apiError struct {
	Status   int
	Code     string
	Message  string
	Field    string
	Problems []wcp.FieldError
	Extra    map[string]any
	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

func (e *apiError) field(f string) *apiError { e.Field = f; return e }

type errorBody struct {
	Code      string           `json:"code"`
	Message   string           `json:"message"`
	Field     string           `json:"field,omitempty"`
	Problems  []wcp.FieldError `json:"problems,omitempty"`
	RequestID string           `json:"request_id,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"` + CodeInternal + `","message":"encoding the response failed"}}`)
	}
	writeRawJSON(w, status, b)
}

// writeRawJSON answers with b, JSON already encoded, and a newline.
func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Content-Length"] = []string{strconv.Itoa(len(b) + 1)}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	body := make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		body[k] = v
	}
	body["error"] = errorBody{Code: e.Code, Message: e.Message, Field: e.Field, Problems: e.Problems, RequestID: requestID(r)}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hall"`)
	}
	if st := state(r); st != nil {
		st.errCode = e.Code
	}
	writeJSON(w, e.Status, body)
}
