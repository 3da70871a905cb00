package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// unavailableOr is e, unless err says the shared database cannot be
// reached: then 503 STATE_UNAVAILABLE with Retry-After, since nothing ran
// (a worker runs only once its decision is durable) and the stores
// reconnect by themselves (docs/DEPLOY.md).
func unavailableOr(err error, e *apiError) *apiError {
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
