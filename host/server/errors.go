package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/wcphall/hall/host/wcp"
)

// Error codes of the HTTP API that are not WCP deny codes or sandbox
// outcome codes (docs/HTTP.md lists them all).
const (
	CodeUnauthenticated  = "UNAUTHENTICATED"
	CodeForbidden        = "FORBIDDEN"
	CodeTenantMismatch   = "TENANT_MISMATCH"
	CodeInvalidJSON      = "INVALID_JSON"
	CodeInvalidInput     = "INVALID_INPUT"
	CodeInvalidRequest   = "INVALID_REQUEST"
	CodeBodyTooLarge     = "BODY_TOO_LARGE"
	CodeUnsupportedMedia = "UNSUPPORTED_MEDIA_TYPE"
	CodeNotFound         = "NOT_FOUND"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeWorkerNotFound   = "WORKER_NOT_FOUND"
	CodeReceiptNotFound  = "RECEIPT_NOT_FOUND"
	CodeInvalidDigest    = "INVALID_DIGEST"
	CodeArtifactUnknown  = "ARTIFACT_UNKNOWN"
	CodeModuleInvalid    = "MODULE_INVALID"
	CodeRecordInvalid    = "RECORD_INVALID"
	CodeHallOffline      = "HALL_OFFLINE"
	CodeSaturated        = "HALL_SATURATED"
	CodeEvidence         = "EVIDENCE_UNAVAILABLE"
	CodeInternal         = "INTERNAL"
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
		b = []byte(`{"error":{"code":"INTERNAL","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
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
