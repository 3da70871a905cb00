package server

import (
	"net/url"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
)

// The console's banners come from this fixed table, by code: a URL names a
// code (and at most an approval id, checked for its form), never the text
// (issue 25: ?error= put any text in a banner on the signed-in page, a
// phishing line under the Hall's name).
const (
	msgSigninThrottled  = "signin_throttled"
	msgAnswerFailed     = "answer_failed"
	msgCommentRequired  = "comment_required"
	msgApprovalNotFound = string(wcp.CodeApprovalNotFound)
	msgApprovalConflict = string(wcp.CodeApprovalConflict)
	msgApprovalForbid   = string(wcp.CodeApprovalForbidden)
	msgApprovalStale    = string(wcp.CodeApprovalStale)
	msgInvalidRequest   = string(wcp.CodeInvalidRequest)
)

var consoleMessages = map[string]string{
	msgSigninThrottled:  "SIGNIN_THROTTLED: too many sign-in attempts from this address; wait a minute and try again.",
	msgAnswerFailed:     "The approval could not be answered (see the server log).",
	msgCommentRequired:  "INVALID_REQUEST: a denial needs a comment saying why; write one and deny again.",
	msgApprovalNotFound: "APPROVAL_NOT_FOUND: there is no such approval.",
	msgApprovalConflict: "APPROVAL_CONFLICT: the approval is no longer pending (answered, expired or used meanwhile).",
	msgApprovalForbid:   "APPROVAL_FORBIDDEN: this token may not answer this approval (it acts as the requesting tenant, or its approver issuance is not recorded).",
	msgApprovalStale:    "APPROVAL_STALE: the rules, policies, configuration or workers changed since the request; the approval is void and the caller must request a new one.",
	msgInvalidRequest:   "INVALID_REQUEST: the answer was malformed (a comment is at most 2000 bytes).",
}

// consoleMessage is the banner of code ("" for a code not in the table).
func consoleMessage(code string) string { return consoleMessages[code] }

// consoleMessageFor is the banner a URL's query asks for: its code's
// sentence, naming the approval when id has an approval id's form.
func consoleMessageFor(q url.Values) string {
	m := consoleMessage(q.Get("error"))
	if m == "" {
		return ""
	}
	if id := q.Get("id"); approval.ValidID(id) {
		m += " (approval " + id + ")"
	}
	return m
}
