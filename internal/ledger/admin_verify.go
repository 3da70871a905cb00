package ledger

import (
	"encoding/json"
	"fmt"
	"strings"
)

// adminStep checks the actor of one change that is neither a token nor an
// approval change (rules, snapshot, enroll, policy, config, …): once the
// chain holds a token change, a change made by a token ("token:<id>")
// must follow that token's issuance with scope admin, and no revocation
// of it (docs/EVIDENCE.md, "Tokens"). It returns why the change breaks,
// or "". Changes whose actor is not a token are not judged here.
func (w *tokenWalk) adminStep(row *changeRow) string {
	// The actor is a JSON string member; a body that cannot hold
	// "token: is not decoded.
	if !w.seen || !strings.Contains(row.body, `"token:`) {
		return ""
	}
	var c Change
	if err := json.Unmarshal([]byte(row.body), &c); err != nil {
		return fmt.Sprintf("%s change: it does not decode: %v", row.kind, err)
	}
	if !strings.HasPrefix(c.Actor, "token:") {
		return ""
	}
	id := c.Actor[len("token:"):]
	l := w.tokens[id]
	switch {
	case l == nil || !l.issued:
		return fmt.Sprintf("%s change %s made by token %s, whose admin issuance no earlier change records", row.kind, row.subject, id)
	case l.revoked:
		return fmt.Sprintf("%s change %s made by token %s, revoked in change %s before", row.kind, row.subject, id, l.changeID)
	case l.scope != "admin":
		return fmt.Sprintf("%s change %s made by token %s, issued with scope %s, not admin", row.kind, row.subject, id, l.scope)
	}
	return ""
}
