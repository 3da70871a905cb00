package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// DBFile is the token database's file name inside the Hall state directory.
const DBFile = "auth.db"

// Errors a caller can act on.
var (
	// ErrInvalidToken: the presented token is malformed, unknown or revoked.
	// The three cases are deliberately not distinguished.
	ErrInvalidToken = errors.New("AUTH_INVALID_TOKEN: the token is not valid (malformed, unknown or revoked)")
	// ErrNotFound: no token has the given id.
	ErrNotFound = errors.New("AUTH_NOT_FOUND: no such token")
	// ErrInvalidScope: a scope is not "admin", "tenant:<tenant_id>",
	// "approver" or "approver:<tenant_id>".
	ErrInvalidScope = errors.New("AUTH_INVALID_SCOPE")
)

// Scope is what a token may do: administer the Hall, act as one tenant, or
// answer human approvals (WCP §5.8). Exactly one of Admin, Tenant and
// Approver is set.
//
// An approver token acts as no tenant: it is refused wherever a tenant
// token is accepted (routing, dispatch, receipts), so an empty Tenant never
// reaches a tenant check. ApproverTenant is the tenant the approver also
// belongs to, if any: it cannot answer that tenant's requests.
type Scope struct {
	Admin  bool
	Tenant string
	// Approver answers pending human approvals (hall approvals, POST
	// /wcp/approvals/{id}/approve|deny, the console).
	Approver bool
	// ApproverTenant is the tenant an approver belongs to ("" for none).
	ApproverTenant string
}

// AdminScope is the scope of an administrator token.
func AdminScope() Scope { return Scope{Admin: true} }

// TenantScope is the scope of a token acting as tenant.
func TenantScope(tenant string) Scope { return Scope{Tenant: tenant} }

// ApproverScope is the scope of an approver token; tenant ("" for none) is
// the tenant whose requests it may not answer.
func ApproverScope(tenant string) Scope { return Scope{Approver: true, ApproverTenant: tenant} }

// IsTenant reports whether the token acts as a tenant (Tenant is set and
// it is neither admin nor approver).
func (s Scope) IsTenant() bool { return !s.Admin && !s.Approver && s.Tenant != "" }

// String returns "admin", "tenant:<tenant_id>", "approver" or
// "approver:<tenant_id>".
func (s Scope) String() string {
	switch {
	case s.Admin:
		return "admin"
	case s.Approver && s.ApproverTenant != "":
		return "approver:" + s.ApproverTenant
	case s.Approver:
		return "approver"
	}
	return "tenant:" + s.Tenant
}

// ParseScope parses the form String returns.
func ParseScope(s string) (Scope, error) {
	if s == "admin" {
		return AdminScope(), nil
	}
	if s == "approver" {
		return ApproverScope(""), nil
	}
	if t, ok := strings.CutPrefix(s, "approver:"); ok {
		if err := CheckTenant(t); err != nil {
			return Scope{}, err
		}
		return ApproverScope(t), nil
	}
	if t, ok := strings.CutPrefix(s, "tenant:"); ok {
		if err := CheckTenant(t); err != nil {
			return Scope{}, err
		}
		return TenantScope(t), nil
	}
	return Scope{}, fmt.Errorf("%w: %q is not \"admin\", \"tenant:<tenant_id>\", \"approver\" or \"approver:<tenant_id>\"", ErrInvalidScope, s)
}

// check reports whether s is one of the scopes ParseScope returns.
func (s Scope) check() error {
	switch {
	case s.Admin && (s.Tenant != "" || s.Approver || s.ApproverTenant != ""):
		return fmt.Errorf("%w: a token is admin, a tenant's or an approver, only one", ErrInvalidScope)
	case s.Admin:
		return nil
	case s.Approver && s.Tenant != "":
		return fmt.Errorf("%w: an approver token acts as no tenant (give the tenant it belongs to as ApproverTenant)", ErrInvalidScope)
	case s.Approver && s.ApproverTenant != "":
		return CheckTenant(s.ApproverTenant)
	case s.Approver:
		return nil
	case s.ApproverTenant != "":
		return fmt.Errorf("%w: ApproverTenant is for approver tokens only", ErrInvalidScope)
	}
	return CheckTenant(s.Tenant)
}

// CheckTenant reports whether t can be a token's tenant: 1 to 128
// printable characters without spaces (a tenant id travels into decisions,
// receipts and logs, and must not be blank, as WCP requires of tenant_id).
func CheckTenant(t string) error {
	if t == "" || len(t) > 128 {
		return fmt.Errorf("%w: a tenant id has 1 to 128 characters", ErrInvalidScope)
	}
	for _, r := range t {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: tenant id %q contains a space or control character", ErrInvalidScope, t)
		}
	}
	return nil
}

// Token is a stored token's metadata. The token itself is never stored.
type Token struct {
	// ID is the public identifier, "tok_<12 hex>", shown by `hall tokens list`.
	ID        string
	Scope     Scope
	Name      string
	CreatedAt time.Time
	// RevokedAt is zero while the token is valid.
	RevokedAt time.Time
}

// Revoked reports whether the token was revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Store is the token database. Its methods are safe for concurrent use,
// and several processes may open the same file.
type Store struct {
	db     *sql.DB
	path   string
	lookup *sql.Stmt // selectToken + " WHERE id = ?", prepared once

	watch watcher    // has the file changed? (cache.go)
	cache tokenCache // rows Authenticate found, valid while the file is unchanged
	// pg: the store is in PostgreSQL (OpenPostgres).
	pg bool
}

const selectToken = `SELECT id, hash, scope, name, created_at, revoked_at FROM tokens`

const schema = `
CREATE TABLE IF NOT EXISTS tokens (
	id         TEXT PRIMARY KEY,
	hash       BLOB NOT NULL,
	scope      TEXT NOT NULL,
	name       TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	revoked_at TEXT
) STRICT;`

// Open opens (creating it and its directory when missing) the token
// database at path. The file is made readable by its owner only: it holds
// no tokens, but its hashes and scopes are still the Hall's access list.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	// Create the file 0600 before SQLite does (SQLite would use the umask).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	q.Set("_journal_mode", "WAL")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("auth: open %s: %w", path, err)
	}
	// Keep the connections open (database/sql keeps 2 idle by default, and
	// opening an SQLite connection costs far more than a lookup). One more
	// than the pool is the watcher's, pinned by the first Authenticate.
	db.SetMaxOpenConns(8 + 1)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("auth: open %s: %w", path, err)
	}
	lookup, err := db.Prepare(selectToken + ` WHERE id = ?`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("auth: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, lookup: lookup}
	s.watch.versionSQL = "PRAGMA data_version"
	return s, nil
}

// Path returns the database file.
func (s *Store) Path() string { return s.path }

// Close releases the database.
func (s *Store) Close() error {
	s.watch.close()
	s.cache.invalidate()
	s.lookup.Close()
	return s.db.Close()
}

const (
	tokenPrefix = "hall_"
	idHexLen    = 12
	secretLen   = 43 // base64url (no padding) of 32 bytes
)

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Create makes a new token with scope and an optional descriptive name,
// and returns the token (the only time it exists outside the caller) with
// its metadata.
func (s *Store) Create(ctx context.Context, scope Scope, name string) (string, Token, error) {
	if err := scope.check(); err != nil {
		return "", Token{}, err
	}
	var idb [idHexLen / 2]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", Token{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", Token{}, err
	}
	idHex := hex.EncodeToString(idb[:])
	token := tokenPrefix + idHex + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	t := Token{ID: "tok_" + idHex, Scope: scope, Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (id, hash, scope, name, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, hashToken(token), scope.String(), name, t.CreatedAt.Format(time.RFC3339))
	s.cache.invalidate() // this process's own write, whatever the watcher sees
	if err != nil {
		return "", Token{}, fmt.Errorf("auth: creating token: %w", err)
	}
	return token, t, nil
}

// Authenticate returns the metadata of a valid token, or an error wrapping
// ErrInvalidToken.
//
// A token found once is answered from memory afterwards, but only after a
// check, started during this call, that the database has not changed since
// it was read (see cache.go): a token revoked, changed or deleted, by this
// Store or by another process, is refused by every Authenticate that
// starts after the write returned, and a token created is accepted.
func (s *Store) Authenticate(ctx context.Context, token string) (Token, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || len(rest) != idHexLen+1+secretLen || rest[idHexLen] != '_' {
		return Token{}, ErrInvalidToken
	}
	// The id is lower-case hex, as Create writes it, so that one key is one id.
	var key tokenKey
	for i := range idHexLen {
		if c := rest[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return Token{}, ErrInvalidToken
		}
	}
	if _, err := hex.Decode(key[:], []byte(rest[:idHexLen])); err != nil {
		return Token{}, ErrInvalidToken
	}
	if err := ctx.Err(); err != nil {
		return Token{}, err
	}
	// A cached row is used only once a check that started during this
	// call has found the database unchanged since it was read (cache.go).
	cacheable := true
	var e cacheEntry
	var hit bool
	var gen uint64
	if cacheable {
		e, hit, gen = s.cache.get(key)
	}
	if hit {
		if err := s.watch.sync(s.db, &s.cache); err != nil {
			hit, cacheable = false, false // no check: ask the database
		} else {
			e, hit, gen = s.cache.get(key)
		}
	}
	if !hit {
		var stored []byte
		t, err := s.get(ctx, "tok_"+rest[:idHexLen], &stored)
		if errors.Is(err, ErrNotFound) {
			return Token{}, ErrInvalidToken // unknown ids are not cached
		}
		if err != nil {
			return Token{}, err
		}
		if len(stored) != len(e.hash) {
			return Token{}, ErrInvalidToken
		}
		e = cacheEntry{tok: t}
		copy(e.hash[:], stored)
		if cacheable {
			s.cache.put(key, e, gen) // unless invalidated since gen was read
		}
	}
	// hashToken's []byte(token) would be a heap copy on every request.
	var buf [len(tokenPrefix) + idHexLen + 1 + secretLen]byte
	h := sha256.Sum256(buf[:copy(buf[:], token)])
	if subtle.ConstantTimeCompare(e.hash[:], h[:]) != 1 || e.tok.Revoked() {
		return Token{}, ErrInvalidToken
	}
	return e.tok, nil
}

// StoredHash returns the hash the database holds for the token with id
// (what Authenticate compares a presented token's hash with), revoked or
// not; an unknown id is an error wrapping ErrNotFound. The Hall binds it
// to the token's signed issuance (docs/EVIDENCE.md, "Tokens").
func (s *Store) StoredHash(ctx context.Context, id string) ([]byte, error) {
	var h []byte
	if _, err := s.get(ctx, id, &h); err != nil {
		return nil, err
	}
	return h, nil
}

func (s *Store) get(ctx context.Context, id string, hash *[]byte) (Token, error) {
	row := s.lookup.QueryRowContext(ctx, id)
	t, h, err := scanToken(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("auth: %w", err)
	}
	if hash != nil {
		*hash = h
	}
	return t, nil
}

func scanToken(scan func(...any) error) (Token, []byte, error) {
	var (
		t        Token
		h        []byte
		scope    string
		created  string
		revokedS sql.NullString
	)
	if err := scan(&t.ID, &h, &scope, &t.Name, &created, &revokedS); err != nil {
		return Token{}, nil, err
	}
	sc, err := ParseScope(scope)
	if err != nil {
		return Token{}, nil, fmt.Errorf("token %s: %w", t.ID, err)
	}
	t.Scope = sc
	if t.CreatedAt, err = time.Parse(time.RFC3339, created); err != nil {
		return Token{}, nil, fmt.Errorf("token %s: created_at: %w", t.ID, err)
	}
	if revokedS.Valid {
		if t.RevokedAt, err = time.Parse(time.RFC3339, revokedS.String); err != nil {
			return Token{}, nil, fmt.Errorf("token %s: revoked_at: %w", t.ID, err)
		}
	}
	return t, h, nil
}

// List returns every token's metadata, oldest first, revoked ones included.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, selectToken+` ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, _, err := scanToken(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Revoke revokes the token with the given id ("tok_<hex>"). Revoking a
// revoked token is not an error; an unknown id wraps ErrNotFound.
func (s *Store) Revoke(ctx context.Context, id string) (Token, error) {
	_, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
		time.Now().UTC().Format(time.RFC3339), id)
	s.cache.invalidate() // this process's own write, whatever the watcher sees
	if err != nil {
		return Token{}, fmt.Errorf("auth: %w", err)
	}
	return s.get(ctx, id, nil)
}
