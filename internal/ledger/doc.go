// Package ledger is the Hall's evidence ledger: the append-only record of
// every routing decision (allowed, denied or dry-run, with its telemetry
// envelopes), every telemetry event a worker emits, and one signed receipt
// per dispatch (WCP §5.7).
//
// Receipts form one hash chain per tenant stream: each receipt carries the
// hash of the previous receipt of its tenant, a per-stream sequence number,
// its own hash and an Ed25519 signature over that hash. [SQLite.Verify] walks
// every chain and reports the first break in each; [SQLite.Export] writes the
// chains as JSON Lines so they can be checked without the Hall.
//
// Every decision (allowed, denied, dry run) and every batch of worker
// telemetry is an entry of its tenant's decision chain, signed like a
// receipt. Hashes cover RFC 8785 canonical JSON (format version 2;
// version 1 entries keep verifying). Checkpoints sign the heads of every
// chain and can be written outside the state directory; the signing key
// can live outside it too and rotates with its validity recorded in the
// change chain; [SQLite.ExportBundle] writes what an auditor verifies
// without the Hall (docs/EVIDENCE.md).
//
// A receipt also names the registry record (RecordDigest) and the privilege
// envelope in force when the worker ran. Changes to what governs dispatch —
// enrollments, replaced rules or configuration, each with who made it and
// the digest of what was in force afterwards — form one more chain for the
// whole ledger ([Change], [SQLite.RecordChange]), signed with the same key
// and walked by the same Verify. The ledger's own schema version is in that
// chain too ([ChangeSchema]), so every row Verify accepts is covered by a
// signature: rows of an older form are accepted only as sealed at the
// upgrade that recorded them.
//
// Storage sits behind the small [Store] interface. [Open] gives the SQLite
// engine, which keeps the database in <state dir>/hall.db and the signing key
// in <state dir>/keys/ed25519.key, and is safe for several processes (a CLI
// and a server) writing at the same time.
//
// The package decides nothing and runs nothing: the dispatch choke point in
// package host calls it after deciding and running. It does not read
// registry records or rules; everything it stores, changes included, is
// handed to it.
//
// # Notes
//
// What the chain can and cannot prove is in RATIONALE.md next to this file;
// in short, an attacker who can write the database but not read the key
// cannot change, remove or reorder a receipt, decision or change without
// Verify noticing, except for cutting the newest entries of a chain
// together with its head row, which a checkpoint kept elsewhere catches.
package ledger
