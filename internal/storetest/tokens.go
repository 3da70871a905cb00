package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/auth"
)

// TestTokens checks a TokenStore: a token created through one open
// authenticates through another with its scope, a revocation is refused
// from the next Authenticate of every open, and unknown or malformed
// tokens are ErrInvalidToken.
func TestTokens(t *testing.T, b Backend) {
	ctx := context.Background()
	state := b.New(t)
	a, c := open(t, b, state).Tokens, open(t, b, state).Tokens
	if a == nil || c == nil {
		t.Fatal("Stores.Tokens is nil")
	}
	scopes := []host.TokenScope{auth.AdminScope(), auth.TenantScope("org.acme"), auth.ApproverScope("org.other")}
	secrets := make([]string, len(scopes))
	toks := make([]host.Token, len(scopes))
	for i, sc := range scopes {
		var err error
		secrets[i], toks[i], err = a.Create(ctx, sc, "contract")
		if err != nil {
			t.Fatalf("Create(%s): %v", sc, err)
		}
		if toks[i].ID == "" || toks[i].Scope != sc || toks[i].Revoked() {
			t.Fatalf("Create(%s) = %+v", sc, toks[i])
		}
	}
	for i, s := range secrets {
		got, err := c.Authenticate(ctx, s)
		if err != nil {
			t.Fatalf("Authenticate through another open: %v", err)
		}
		if got.ID != toks[i].ID || got.Scope != scopes[i] {
			t.Fatalf("Authenticate = %+v, want %+v", got, toks[i])
		}
	}
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range list {
		ids = append(ids, tk.ID)
	}
	for _, tk := range toks {
		if !slices.Contains(ids, tk.ID) {
			t.Fatalf("List through another open = %v, lacks %s", ids, tk.ID)
		}
	}

	// Revoked through one open, refused by the other from its next call
	// (it authenticated the token just before: a cache must not keep it).
	if _, err := c.Authenticate(ctx, secrets[1]); err != nil {
		t.Fatal(err)
	}
	rv, err := a.Revoke(ctx, toks[1].ID)
	if err != nil || !rv.Revoked() || rv.ID != toks[1].ID {
		t.Fatalf("Revoke = %+v, %v", rv, err)
	}
	if _, err := c.Authenticate(ctx, secrets[1]); !errors.Is(err, host.ErrInvalidToken) {
		t.Fatalf("Authenticate of a token revoked through another open: %v, want ErrInvalidToken", err)
	}
	if _, err := a.Authenticate(ctx, secrets[0]); err != nil {
		t.Fatalf("another token stopped authenticating after a revocation: %v", err)
	}
	if _, err := a.Revoke(ctx, "tok_000000000000"); !errors.Is(err, host.ErrTokenNotFound) {
		t.Fatalf("Revoke(unknown) = %v, want ErrTokenNotFound", err)
	}
	for _, bad := range []string{"", "hall_nonsense", secrets[0] + "x", secrets[0][:len(secrets[0])-1] + "A"} {
		if bad == secrets[0] {
			continue
		}
		if _, err := c.Authenticate(ctx, bad); !errors.Is(err, host.ErrInvalidToken) {
			t.Fatalf("Authenticate(%q) = %v, want ErrInvalidToken", bad, err)
		}
	}
}
