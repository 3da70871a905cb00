package sdk

import (
	"errors"
	"testing"
)

func TestParseInvokeReply(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		isErr       bool
		want        string
		wantErr     error
		denyCode    string
		outcome     string
	}{
		{"output", `hi`, false, "hi", nil, "", ""},
		{"output-that-looks-like-an-error", `{"code":"INVOKE_DENIED"}`, false, `{"code":"INVOKE_DENIED"}`, nil, "", ""},
		{"empty-output", ``, false, "", nil, "", ""},
		{"denied", `{"code":"INVOKE_DENIED","message":"m","deny_code":"DENY_TOOL_NOT_DECLARED","decision_id":"d"}`, true, "", ErrInvokeDenied, "DENY_TOOL_NOT_DECLARED", ""},
		{"failed", `{"code":"INVOKE_FAILED","message":"m","outcome":"LIMIT_TIMEOUT"}`, true, "", ErrInvokeFailed, "", "LIMIT_TIMEOUT"},
		{"chain-limit", `{"code":"CHAIN_LIMIT","message":"m","deny_code":"DENY_CHAIN_LIMIT"}`, true, "", ErrChainLimit, "DENY_CHAIN_LIMIT", ""},
		{"unavailable", `{"code":"INVOKE_UNAVAILABLE","message":"m"}`, true, "", ErrInvokeUnavailable, "", ""},
		{"error-without-code", `{"message":"m"}`, true, "", ErrHostProtocol, "", ""},
		{"error-empty", ``, true, "", ErrHostProtocol, "", ""},
		{"error-not-json", `nope`, true, "", ErrHostProtocol, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInvokeReply([]byte(tc.reply), tc.isErr)
			if tc.wantErr == nil {
				if err != nil || string(got) != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			var se *Error
			if !errors.Is(err, tc.wantErr) || !errors.As(err, &se) || se.DenyCode != tc.denyCode || se.Outcome != tc.outcome {
				t.Fatalf("error %#v, want %v with deny_code %q outcome %q", err, tc.wantErr, tc.denyCode, tc.outcome)
			}
		})
	}
}
