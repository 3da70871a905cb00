package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// CheckpointPolicy says when the ledger signs checkpoints by itself and
// where it writes them.
type CheckpointPolicy struct {
	// Dir is the witness directory every checkpoint is also written to,
	// one file each (checkpoint-<time>-<hash>.json). Point it outside the
	// state directory, at storage the database's writers cannot rewrite
	// (another volume, a synced bucket, an append-only mount). "" keeps
	// checkpoints in the database only.
	Dir string
	// Every signs a checkpoint after this many entries were written by
	// this process since the last one (0: never by count).
	Every int
	// Interval signs a checkpoint this often while entries are being
	// written (0: never by time).
	Interval time.Duration
}

// WithCheckpoints sets the checkpoint policy (default: checkpoints only on
// demand, kept in the database).
func WithCheckpoints(p CheckpointPolicy) Option { return func(o *options) { o.checkpoints = p } }

// Checkpoint is a signed statement of the heads of every chain at one
// moment (docs/EVIDENCE.md, "Checkpoints"). Kept outside the database, it
// makes cutting the end of any chain — or restoring an older copy of the
// whole database — detectable: every head it names must still be there,
// unchanged.
type Checkpoint struct {
	Version      int    `json:"version"`
	CheckpointID string `json:"checkpoint_id"`
	CreatedAt    string `json:"created_at"`
	// Heads lists receipt streams, then decision chains (each by stream
	// name), then the change chain.
	Heads        []Head `json:"heads"`
	SigningKeyID string `json:"signing_key_id"`
	// Hash is "sha256:" + hex SHA-256 of the RFC 8785 JSON of the
	// checkpoint without hash and signature; Signature the standard
	// base64 Ed25519 signature of Hash's ASCII bytes.
	Hash      string `json:"hash,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// ComputeHash returns the hash of c's canonical body.
func (c *Checkpoint) ComputeHash() (string, error) {
	b := *c
	b.Hash, b.Signature = "", ""
	body, err := canonicalMarshal(b)
	if err != nil {
		return "", err
	}
	return hashBody(body), nil
}

// FileName is the name the checkpoint is written under in a witness
// directory: names sort by creation time.
func (c *Checkpoint) FileName() string {
	t := strings.NewReplacer(":", "", "-", "").Replace(c.CreatedAt)
	h := strings.TrimPrefix(c.Hash, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return "checkpoint-" + t + "-" + h + ".json"
}

// Checkpoint signs the heads of every chain now, stores the checkpoint in
// the database and, with a witness directory (CheckpointPolicy.Dir),
// writes it there too. The heads are read inside the write transaction, so
// the checkpoint names a state the ledger really was in.
func (s *SQLite) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	if s.key.Load() == nil {
		return nil, fmt.Errorf("ledger: checkpoint: %w", s.keyError)
	}
	var cp Checkpoint
	op := "checkpoint"
	err := s.submit(ctx, newWrite(op, func(tx *sql.Tx) error {
		heads, err := currentHeads(tx)
		if err != nil {
			return s.wrap(op, err)
		}
		var h Head
		var seq int64
		err = tx.QueryRowContext(context.Background(), `SELECT seq, change_id, hash FROM change_head WHERE chain = 1`).Scan(&seq, &h.ReceiptID, &h.ReceiptHash)
		if err == nil {
			h.Chain, h.Tenant, h.Sequence = ChainChanges, ChangeChain, uint64(seq)
			heads = append(heads, h)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return s.wrap(op, err)
		}
		if heads == nil {
			heads = []Head{}
		}
		var id [16]byte
		rand.Read(id[:])
		k := s.key.Load()
		cp = Checkpoint{Version: formatV2, CheckpointID: "cp_" + hex.EncodeToString(id[:]),
			CreatedAt: time.Now().UTC().Format(wcp.TimeLayout), Heads: heads, SigningKeyID: k.id}
		if cp.Hash, err = cp.ComputeHash(); err != nil {
			return err
		}
		cp.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, []byte(cp.Hash)))
		body, err := json.Marshal(cp)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(context.Background(), `INSERT INTO checkpoints (checkpoint_id, created_at, hash, signing_key_id, signature, body)
			VALUES (?, ?, ?, ?, ?, ?)`, cp.CheckpointID, cp.CreatedAt, cp.Hash, cp.SigningKeyID, cp.Signature, string(body))
		return s.wrap(op, err)
	}, nil))
	if err != nil {
		return nil, err
	}
	if dir := s.opts.checkpoints.Dir; dir != "" {
		if err := WriteCheckpoint(dir, &cp); err != nil {
			return &cp, fmt.Errorf("ledger: checkpoint %s is recorded but could not be written to %s: %w", cp.CheckpointID, dir, err)
		}
	}
	return &cp, nil
}

// WriteCheckpoint writes c into dir (created 0700 if missing) under
// c.FileName(), atomically: a temporary file renamed into place.
func WriteCheckpoint(dir string, c *Checkpoint) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".checkpoint-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(append(b, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, c.FileName()))
	}
	if err == nil {
		syncDir(dir)
	}
	return err
}

// ReadCheckpoints reads every checkpoint-*.json file of dir, oldest first.
// A file that does not parse is an error naming it; whether a checkpoint
// verifies is Verify's business.
func ReadCheckpoints(dir string) ([]Checkpoint, error) {
	names, err := filepath.Glob(filepath.Join(dir, "checkpoint-*.json"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Checkpoint, 0, len(names))
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var c Checkpoint
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s: not a checkpoint: %v", n, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Checkpoints returns the checkpoints stored in the database, oldest first.
func (s *SQLite) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM checkpoints ORDER BY id`)
	if err != nil {
		return nil, s.wrap("checkpoints", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, s.wrap("checkpoints", err)
		}
		var c Checkpoint
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return nil, fmt.Errorf("ledger: stored checkpoint is malformed: %w", err)
		}
		out = append(out, c)
	}
	return out, s.wrap("checkpoints", rows.Err())
}

// checkpointer runs the automatic checkpoints of a CheckpointPolicy.
type checkpointer struct {
	running  atomic.Bool
	last     atomic.Uint64 // s.written at the last automatic checkpoint
	lastTime atomic.Int64  // unix nanoseconds of the last one
	wg       sync.WaitGroup
	// Err keeps the last automatic checkpoint's failure, for LastError.
	mu  sync.Mutex
	err error
}

// afterCommit runs in the committer after each commit: when the policy
// says a checkpoint is due, one is signed in the background (the
// committer cannot wait for a write of its own).
func (c *checkpointer) afterCommit(s *SQLite) {
	p := s.opts.checkpoints
	if p.Every <= 0 && p.Interval <= 0 {
		return
	}
	n := s.written.Load()
	due := p.Every > 0 && n-c.last.Load() >= uint64(p.Every)
	if p.Interval > 0 {
		last := c.lastTime.Load()
		if last == 0 {
			c.lastTime.CompareAndSwap(0, time.Now().UnixNano())
		} else if time.Since(time.Unix(0, last)) >= p.Interval {
			due = true
		}
	}
	if !due || !c.running.CompareAndSwap(false, true) {
		return
	}
	c.last.Store(n)
	c.lastTime.Store(time.Now().UnixNano())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.running.Store(false)
		for {
			_, err := s.Checkpoint(context.Background())
			if errors.Is(err, ErrClosed) {
				err = nil
			}
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			// Writes that committed while this checkpoint ran found it
			// running and did not start another: when they make one due
			// (more than this checkpoint's own write), sign it now rather
			// than at some later commit that may never come.
			n := s.written.Load()
			if err != nil || p.Every <= 0 || n-c.last.Load() < uint64(max(p.Every, 2)) {
				return
			}
			c.last.Store(n)
			c.lastTime.Store(time.Now().UnixNano())
		}
	}()
}

// LastCheckpointError returns the failure of the last automatic
// checkpoint, or nil.
func (s *SQLite) LastCheckpointError() error {
	s.cp.mu.Lock()
	defer s.cp.mu.Unlock()
	return s.cp.err
}
