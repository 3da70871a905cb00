package host

import (
	"context"
	"errors"
	"fmt"
)

// DocKind names one of the single documents a SnapshotSource stores.
type DocKind string

// The documents of a snapshot source, besides the enrolled records.
const (
	// DocRules is the routing rules document (rules.json).
	DocRules DocKind = "rules"
	// DocPolicy is the policy set (policy.json, docs/POLICY.md).
	DocPolicy DocKind = "policy"
	// DocConfig is the Hall configuration (hall.json).
	DocConfig DocKind = "config"
	// DocTrust is the trust policy (trust.json, docs/SUPPLY-CHAIN.md),
	// stored self-contained (keys and trusted root inline). A source
	// that does not store one reports it absent.
	DocTrust DocKind = "trust"
)

// Doc is one stored document of a SnapshotSource.
type Doc struct {
	// Name says where the document is, for messages and evidence: the
	// file's path for the files of Options, a name of the source's
	// choosing otherwise. It is set whether or not the document is
	// present.
	Name string
	// Present is false when the source holds no such document (no rules
	// file, no policy set, no hall.json). Absence is a state: the Hall
	// records it like any other.
	Present bool
	// Data is the document's bytes, exactly as stored (nil when absent).
	Data []byte
}

// RecordDoc is one enrolled record as a SnapshotSource stores it.
type RecordDoc struct {
	// Name says where the record is (enrolled/<worker_id>.json for the
	// files of Options), for messages and evidence.
	Name string
	// Data is the record's bytes, exactly as stored.
	Data []byte
	// Err is set when this one record could not be read: the Hall
	// reports it (Hall.Problems) and loads the others.
	Err error
}

// SnapshotDocs are the stored inputs of one snapshot: what Load returns.
type SnapshotDocs struct {
	Rules, Policy, Config Doc
	// Trust is the trust policy (absent: no trust policy).
	Trust Doc
	// Records are every stored record, in Name order.
	Records []RecordDoc
}

// ErrPreconditionFailed is returned (wrapped) by SnapshotSource.Put when
// the stored document does not have the digest ifMatch names: someone
// else changed it since it was read. Nothing was written.
var ErrPreconditionFailed = errors.New("PRECONDITION_FAILED: the stored document changed since it was read")

// NoDocument is the ifMatch of a Put that requires the document to be
// absent (as the snapshot manifest names an absent part).
const NoDocument = noPart

// SnapshotSource is where a Hall's snapshot inputs are stored: the rules,
// the policy set, the configuration (hall.json) and the enrolled records.
// It stores bytes and nothing else (one exception: the files of Options
// return a trust.json that names key files relative to itself in its
// self-contained form, keys inline): parsing, validation, digests, seals
// and recording in the evidence ledger are the Hall's, so a second
// backend (a database shared by several Halls) cannot change what a
// document means. The default is the files named by Options (Dir, Rules,
// RegistryDir, ConfigFile, Policies); Options.Stores.Source replaces them.
//
// The Hall calls Load at Open and on every reload, Get to read one
// document, Put when rules change through it (ReplaceRules, hall enroll
// --add-rule), PutRecord when it enrolls a worker, and Watch while
// Hall.Watch runs. The contract, tested for any implementation by
// internal/storetest.TestSnapshotSource:
//
//   - Load returns every document and record as one set. A database
//     source reads them in one transaction; the files of Options are read
//     one after another, and a change that lands during a Load is then
//     reported by Watch, so the next Load has it.
//   - Get returns what Load would return for kind.
//   - Put stores data as the document of kind, whole (a reader never sees
//     part of it), or removes the document when data is nil. When ifMatch
//     is not "", the stored document must have that digest
//     ("sha256:<hex>" of its bytes), or be absent for NoDocument;
//     otherwise nothing is written and the error wraps
//     ErrPreconditionFailed. A database checks it in the transaction that
//     writes; the files of Options check it just before the rename, which
//     another process could still race.
//   - PutRecord stores the record of workerID, whole, replacing the one
//     stored under that id, and returns the record's Name. workerID is a
//     valid worker id; a source refuses one it cannot store safely (a path
//     separator, "..") with an error.
//   - Watch calls notify once it is watching, then after every change
//     made through any handle on the same store (this Hall, another
//     process, an editor, another node) until ctx is done, when it
//     returns nil. Calls may be coalesced: one call after several changes
//     is enough, as long as a Load begun after that call sees them all.
//     notify's error is non-nil when changes may have been missed
//     (an overflowing watch, a lost notification): the caller should Load
//     anyway. Watch returns an error when it cannot watch; it calls
//     notify from one goroutine, one call at a time.
//
// Methods are safe for concurrent use. Errors name the document and what
// to do. An error from Load or Get fails the Open or Reload that called
// it: the snapshot in force keeps serving.
type SnapshotSource interface {
	Load(ctx context.Context) (*SnapshotDocs, error)
	Get(ctx context.Context, kind DocKind) (Doc, error)
	Put(ctx context.Context, kind DocKind, data []byte, ifMatch string) error
	PutRecord(ctx context.Context, workerID string, data []byte) (name string, err error)
	Watch(ctx context.Context, notify func(error)) error
}

// CheckIfMatch is the precondition of SnapshotSource.Put, for
// implementations: nil when ifMatch is "" or names cur (its digest, or
// NoDocument when cur is absent), else an error naming cur and wrapping
// ErrPreconditionFailed.
func CheckIfMatch(cur Doc, ifMatch string) error {
	if ifMatch == "" {
		return nil
	}
	got := NoDocument
	if cur.Present {
		got = digestOf(cur.Data)
	}
	if got != ifMatch {
		return fmt.Errorf("%s: %w (stored %s, expected %s): read it again and retry", cur.Name, ErrPreconditionFailed, got, ifMatch)
	}
	return nil
}
