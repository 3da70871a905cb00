// Package auth holds the Hall API's bearer tokens: who may call the HTTP
// server and with which scope (an administrator, one tenant, or an approver
// of human approvals, who acts as no tenant).
//
// Only a SHA-256 hash of each token is stored, in the SQLite database
// <home>/auth.db (mode 0600). A token is shown once, when it is created:
//
//	st, err := auth.Open(filepath.Join(home, auth.DBFile))
//	secret, tok, err := st.Create(ctx, auth.TenantScope("org.acme"), "ci")
//	...
//	tok, err = st.Authenticate(ctx, secret) // on every request
//
// # Notes
//
//   - A token is "hall_" + a 12-hex-digit public id + "_" + 43 characters of
//     base64url randomness (256 bits). The public id locates the row; the
//     hash of the whole token is then compared with crypto/subtle, so the
//     comparison that decides authentication takes the same time whatever
//     the presented token is, and the database index is never probed with
//     secret material.
//   - Revocation is immediate: a token revoked by `hall tokens revoke` in
//     another process is refused by a running server from its next request.
//     Authenticate keeps the rows it has read in memory, but every call
//     that uses one first checks, on a connection of its own, that the file
//     has not changed since (PRAGMA data_version; see cache.go and
//     RATIONALE.md). Only rows are kept, never tokens, and at most 1024.
//     On PostgreSQL (OpenPostgres, shared by many nodes) the check reads a
//     version row that a trigger on the token table moves with every
//     change, whoever makes it: a token revoked through any node is
//     refused by every node from its next request.
//   - This database is an access list, not evidence: Create and Revoke
//     here record nothing. The Hall's own paths (host.IssueToken and
//     host.RevokeToken, which hall tokens uses) also record each issuance
//     and revocation as a signed "token" change in the evidence ledger,
//     and a token answers approvals only when that chain issues it
//     (docs/EVIDENCE.md, "Tokens"): a row written here alone approves
//     nothing.
//   - Why SQLite rather than a JSON file (RATIONALE.md): the CLI creates and
//     revokes tokens while `hall serve` reads them from another process.
//     SQLite gives atomic writes, cross-process locking and immediate
//     visibility without a reload protocol, and the module already depends
//     on modernc.org/sqlite for the evidence ledger.
package auth
