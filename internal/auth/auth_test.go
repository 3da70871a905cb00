package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "home", DBFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCreateAuthenticateRevoke(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	admin, at, err := s.Create(ctx, AdminScope(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	acme, tt, err := s.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	if admin == acme || at.ID == tt.ID {
		t.Fatal("two tokens are equal")
	}
	got, err := s.Authenticate(ctx, admin)
	if err != nil || !got.Scope.Admin || got.ID != at.ID || got.Name != "ops" {
		t.Fatalf("admin: %+v, %v", got, err)
	}
	got, err = s.Authenticate(ctx, acme)
	if err != nil || got.Scope.Admin || got.Scope.Tenant != "org.acme" {
		t.Fatalf("tenant: %+v, %v", got, err)
	}
	if _, err := s.Revoke(ctx, tt.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, acme); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := s.Authenticate(ctx, admin); err != nil {
		t.Fatalf("revoking one token affected another: %v", err)
	}
	if _, err := s.Revoke(ctx, "tok_000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if list[1].ID != tt.ID || !list[1].Revoked() || list[0].Revoked() {
		t.Fatalf("list: %+v", list)
	}
}

func TestAuthenticateRejectsForgeries(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	tok, _, err := s.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	flip := []byte(tok)
	last := len(flip) - 1
	if flip[last] == 'A' {
		flip[last] = 'B'
	} else {
		flip[last] = 'A'
	}
	for _, tc := range []struct{ name, token string }{
		{"empty", ""},
		{"no prefix", strings.TrimPrefix(tok, "hall_")},
		{"wrong secret, right id", string(flip)},
		{"truncated", tok[:len(tok)-1]},
		{"extended", tok + "A"},
		{"unknown id", "hall_000000000000_" + tok[len(tok)-secretLen:]},
		{"non-hex id", "hall_zzzzzzzzzzzz_" + tok[len(tok)-secretLen:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Authenticate(ctx, tc.token); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestOnlyHashesStored(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	tok, _, err := s.Create(ctx, AdminScope(), "")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	secret := tok[len(tok)-secretLen:]
	dir := filepath.Dir(s.Path())
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Fatalf("%s contains the token's secret", e.Name())
		}
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", s.Path(), fi.Mode().Perm())
	}
}

func TestScopes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Scope
		ok   bool
	}{
		{"admin", AdminScope(), true},
		{"tenant:org.acme", TenantScope("org.acme"), true},
		{"tenant:", Scope{}, false},
		{"tenant:a b", Scope{}, false},
		{"root", Scope{}, false},
	} {
		got, err := ParseScope(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseScope(%q) = %+v, %v", tc.in, got, err)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
	s := open(t)
	if _, _, err := s.Create(context.Background(), TenantScope(" "), ""); !errors.Is(err, ErrInvalidScope) {
		t.Fatalf("blank tenant: %v", err)
	}
	if _, _, err := s.Create(context.Background(), Scope{Admin: true, Tenant: "org.acme"}, ""); !errors.Is(err, ErrInvalidScope) {
		t.Fatalf("admin+tenant: %v", err)
	}
}

func TestTwoProcessesShareTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFile)
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tok, meta, err := a.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok); err != nil {
		t.Fatalf("a token created by one handle is unknown to another: %v", err)
	}
	if _, err := a.Revoke(ctx, meta.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revocation not seen by the other handle: %v", err)
	}
}

func TestApproverScope(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	for _, tc := range []struct {
		name  string
		scope Scope
		str   string
	}{
		{"plain", ApproverScope(""), "approver"},
		{"of a tenant", ApproverScope("org.acme"), "approver:org.acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret, tok, err := s.Create(ctx, tc.scope, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Authenticate(ctx, secret)
			if err != nil || got.Scope != tc.scope || got.Scope.String() != tc.str || tok.Scope.String() != tc.str {
				t.Fatalf("%+v %v", got, err)
			}
			// An approver acts as no tenant, whatever it belongs to.
			if got.Scope.IsTenant() || got.Scope.Tenant != "" || got.Scope.Admin {
				t.Fatalf("approver acts as a tenant or admin: %+v", got.Scope)
			}
			back, err := ParseScope(tc.str)
			if err != nil || back != tc.scope {
				t.Fatalf("ParseScope(%q) = %+v, %v", tc.str, back, err)
			}
		})
	}
	for _, bad := range []Scope{
		{Approver: true, Tenant: "org.acme"},
		{Admin: true, Approver: true},
		{ApproverTenant: "org.acme"},
		{Approver: true, ApproverTenant: "has space"},
		{},
	} {
		if _, _, err := s.Create(ctx, bad, ""); !errors.Is(err, ErrInvalidScope) {
			t.Errorf("Create(%+v): %v, want ErrInvalidScope", bad, err)
		}
	}
	if _, err := ParseScope("approver:"); !errors.Is(err, ErrInvalidScope) {
		t.Errorf("ParseScope(approver:): %v", err)
	}
}
