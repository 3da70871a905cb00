package sdk

import (
	"encoding/json"
	"fmt"
	"maps"
)

// Block ownership for the Hall host functions: the guest allocates each
// argument block and frees it once the call has returned; the guest also
// frees each result block after reading it. A host must not free either.

// Secret asks the Hall for the secret called name. Only secrets listed in
// the worker's privilege_envelope.secrets_access are served; others fail
// with ErrSecretNotDeclared.
func (c *Call) Secret(name string) (string, error) {
	arg := writeBlock([]byte(name))
	res := takeBlock(hallSecret(arg))
	extismFree(arg)
	return parseSecretReply(res)
}

// parseSecretReply decodes {"value": "..."} or {"error": {...}}.
func parseSecretReply(b []byte) (string, error) {
	var r struct {
		Value *string `json:"value"`
		Error *Error  `json:"error"`
	}
	if err := decodeReply("hall_secret", b, &r); err != nil {
		return "", err
	}
	switch {
	case r.Error != nil:
		return "", r.Error
	case r.Value == nil:
		return "", &Error{Code: ErrHostProtocol.Code, Message: "hall_secret: reply has neither value nor error"}
	}
	return *r.Value, nil
}

// HTTPRequest is an outbound request made through the Hall (hall_http).
type HTTPRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"` // base64 on the wire
}

// HTTPResponse is the Hall's answer to an HTTPRequest.
type HTTPResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"` // base64 on the wire
}

// HTTP performs req through the Hall. Only hosts listed in the worker's
// privilege_envelope.network_egress are reachable; others fail with
// ErrEgressDenied. A response with any status, 4xx and 5xx included, is not
// an error.
func (c *Call) HTTP(req HTTPRequest) (*HTTPResponse, error) {
	if req.Method == "" {
		req.Method = "GET"
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("sdk: encoding HTTP request: %w", err)
	}
	arg := writeBlock(b)
	res := takeBlock(hallHTTP(arg))
	extismFree(arg)
	return parseHTTPReply(res)
}

func parseHTTPReply(b []byte) (*HTTPResponse, error) {
	var r struct {
		HTTPResponse
		Error *Error `json:"error"`
	}
	if err := decodeReply("hall_http", b, &r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, r.Error
	}
	if r.Status == 0 {
		return nil, &Error{Code: ErrHostProtocol.Code, Message: "hall_http: reply has neither status nor error"}
	}
	return &r.HTTPResponse, nil
}

func decodeReply(fn string, b []byte, v any) error {
	if len(b) == 0 {
		return &Error{Code: ErrHostProtocol.Code, Message: fn + ": host returned no block"}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &Error{Code: ErrHostProtocol.Code, Message: fmt.Sprintf("%s: reply is not the documented JSON: %v", fn, err)}
	}
	return nil
}

// Emit sends one telemetry event to the Hall (hall_emit). If event has no
// "correlation_id", the call's correlation id is added (to a copy; event is
// not modified) so the event joins the request's evidence.
//
// # Notes
//
//   - The host may drop events past its rate limit; hall_emit has no
//     result, so Emit cannot report that. Its error is only about encoding.
func (c *Call) Emit(event map[string]any) error {
	if _, ok := event["correlation_id"]; !ok {
		if id := c.Correlation().CorrelationID; id != "" {
			event = maps.Clone(event)
			if event == nil {
				event = map[string]any{}
			}
			event["correlation_id"] = id
		}
	}
	if event == nil {
		event = map[string]any{}
	}
	b, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("sdk: encoding event: %w", err)
	}
	arg := writeBlock(b)
	hallEmit(arg)
	extismFree(arg)
	return nil
}
