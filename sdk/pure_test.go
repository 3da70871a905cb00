package sdk

import (
	"errors"
	"testing"
)

func TestParseSecretReply(t *testing.T) {
	for _, tc := range []struct {
		name, reply, want string
		wantErr           error
	}{
		{"value", `{"value":"s3cr3t"}`, "s3cr3t", nil},
		{"empty-value", `{"value":""}`, "", nil},
		{"not-declared", `{"error":{"code":"SECRET_NOT_DECLARED","message":"x"}}`, "", ErrSecretNotDeclared},
		{"unavailable", `{"error":{"code":"SECRET_UNAVAILABLE","message":"x"}}`, "", ErrSecretUnavailable},
		{"no-block", ``, "", ErrHostProtocol},
		{"not-json", `nope`, "", ErrHostProtocol},
		{"neither", `{}`, "", ErrHostProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSecretReply([]byte(tc.reply))
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("got %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseHTTPReply(t *testing.T) {
	resp, err := parseHTTPReply([]byte(`{"status":404,"headers":{"A":"b"},"body":"aGk="}`))
	if err != nil || resp.Status != 404 || resp.Headers["A"] != "b" || string(resp.Body) != "hi" {
		t.Errorf("got %+v, %v", resp, err)
	}
	for _, tc := range []struct {
		reply string
		want  error
	}{
		{`{"error":{"code":"EGRESS_DENIED","message":"no"}}`, ErrEgressDenied},
		{`{"error":{"code":"RESPONSE_TOO_LARGE","message":"no"}}`, ErrResponseTooLarge},
		{`{"status":200,"body":"!!"}`, ErrHostProtocol},
		{`{"headers":{}}`, ErrHostProtocol},
	} {
		if _, err := parseHTTPReply([]byte(tc.reply)); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.reply, err, tc.want)
		}
	}
}

func TestErrorIsMatchesCodeOnly(t *testing.T) {
	err := error(&Error{Code: "RATE_LIMITED", Message: "too many emits"})
	if !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrBadRequest) {
		t.Error("Is must compare codes")
	}
	if err.Error() != "RATE_LIMITED: too many emits" {
		t.Errorf("Error() = %q", err)
	}
}

func TestDispatchOutsideWasm(t *testing.T) {
	if abiAvailable {
		t.Skip("wasip1 build")
	}
	if rc := Dispatch("cap.x"); rc != 1 {
		t.Errorf("Dispatch = %d, want 1 without the ABI", rc)
	}
	if rc := Run(); rc != 1 {
		t.Errorf("Run = %d, want 1 without the ABI", rc)
	}
}

func TestHandleRejectsMisuse(t *testing.T) {
	defer delete(handlers, "cap.test.dup")
	Handle("cap.test.dup", func(*Call) error { return nil })
	for name, f := range map[string]func(){
		"duplicate": func() { Handle("cap.test.dup", func(*Call) error { return nil }) },
		"empty":     func() { Handle("", func(*Call) error { return nil }) },
		"nil":       func() { Handle("cap.test.nil", nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}
