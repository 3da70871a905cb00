package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// unavailableOr is e, unless err says the shared database cannot be
// reached: then 503 STATE_UNAVAILABLE with Retry-After, since nothing ran
// (a worker runs only once its decision is durable) and the stores
// reconnect by themselves (docs/DEPLOY.md).
//
// A node whose signing key the shared ledger's keyring does not admit
// (or revoked) gets 503 KEY_NOT_ADMITTED instead, with the message that
// names the hall keys admit command: it signs nothing, so it decides
// nothing, until an administrator admits the key.
func unavailableOr(err error, e *apiError) *apiError {
	if errors.Is(err, ledger.ErrKeyNotAdmitted) {
		msg := err.Error()
		if i := strings.Index(msg, string(wcp.CodeKeyNotAdmitted)+": "); i >= 0 {
			msg = msg[i+len(wcp.CodeKeyNotAdmitted)+2:]
		}
		u := errf(http.StatusServiceUnavailable, string(wcp.CodeKeyNotAdmitted), "nothing ran or changed: "+msg)
		u.Extra = e.Extra
		return u
	}
	if !errors.Is(err, host.ErrStoreUnavailable) {
		return e
	}
	u := errf(http.StatusServiceUnavailable, string(wcp.CodeStateUnavailable),
		"the shared database cannot be reached; nothing ran or changed; retry after a second")
	u.RetryAfter = 1
	u.Extra = e.Extra
	return u
}

// sharedDatabase is /health's report of the shared database the token
// store is kept in ({"kind": "postgres", "status": "ok" or
// "unreachable"}), nil for local files.
func sharedDatabase(ctx context.Context, tokens host.TokenStore) map[string]string {
	db, ok := tokens.(interface {
		Database() string
		Ping(context.Context) error
	})
	if !ok || db.Database() == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	status := "ok"
	if err := db.Ping(ctx); err != nil {
		status = "unreachable"
	}
	return map[string]string{"kind": db.Database(), "status": status}
}

// signingKey is /health's report of this node's signing key when it may
// not sign ({"key_id", "standing", "admit"}: the command an administrator
// runs), nil when it signs or the evidence store keeps no keyring.
func signingKey(ctx context.Context, h *host.Hall) map[string]string {
	ev, err := h.Evidence()
	if err != nil {
		return nil
	}
	ks, ok := ev.(interface {
		KeyStanding(ctx context.Context) (ledger.KeyStanding, error)
	})
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := ks.KeyStanding(ctx)
	if err != nil || st.Signs() {
		return nil
	}
	return map[string]string{"key_id": st.KeyID, "standing": st.Standing, "admit": st.Admit}
}
