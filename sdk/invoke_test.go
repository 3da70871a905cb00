package sdk

import (
	"errors"
	"testing"
)

func TestParseInvokeReply(t *testing.T) {
	for _, tc := range []struct {
		name, reply, want string
		wantErr           error
		denyCode, outcome string
	}{
		{"output", `{"output":"aGk="}`, "hi", nil, "", ""},
		{"empty-output", `{"output":""}`, "", nil, "", ""},
		{"denied", `{"error":{"code":"INVOKE_DENIED","message":"m","deny_code":"DENY_TOOL_NOT_DECLARED","decision_id":"d"}}`, "", ErrInvokeDenied, "DENY_TOOL_NOT_DECLARED", ""},
		{"failed", `{"error":{"code":"INVOKE_FAILED","message":"m","outcome":"LIMIT_TIMEOUT"}}`, "", ErrInvokeFailed, "", "LIMIT_TIMEOUT"},
		{"chain-limit", `{"error":{"code":"CHAIN_LIMIT","message":"m","deny_code":"DENY_CHAIN_LIMIT"}}`, "", ErrChainLimit, "DENY_CHAIN_LIMIT", ""},
		{"unavailable", `{"error":{"code":"INVOKE_UNAVAILABLE","message":"m"}}`, "", ErrInvokeUnavailable, "", ""},
		{"no-block", ``, "", ErrHostProtocol, "", ""},
		{"not-json", `nope`, "", ErrHostProtocol, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInvokeReply([]byte(tc.reply))
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
