package ledger

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// Bundle file names (docs/EVIDENCE.md, "Bundles").
const (
	BundleManifest    = "manifest.json"
	BundleKeys        = "keys.json"
	BundleEntries     = "entries.jsonl"
	BundleCheckpoints = "checkpoints"
	// BundleLegacy holds the rows no entry signs (decisions and events
	// rows of a ledger written before decisions were chained), one line
	// each, exactly the lines the first schema change's seal hashes
	// ([LegacyRows]); empty for a ledger born with a schema change.
	BundleLegacy = "legacy.jsonl"
)

// BundleSummary is what [SQLite.ExportBundle] wrote.
type BundleSummary struct {
	Format      string `json:"format"`
	CreatedAt   string `json:"created_at"`
	Receipts    int    `json:"receipts"`
	Decisions   int    `json:"decisions"`
	Changes     int    `json:"changes"`
	Checkpoints int    `json:"checkpoints"`
	Keys        int    `json:"keys"`
	// Heads are the heads of every chain in the exported snapshot.
	Heads []Head `json:"heads"`
}

// BundleFormat names the bundle layout ExportBundle writes.
const BundleFormat = "hall-evidence-bundle/1"

// ExportBundle writes an evidence bundle an auditor can verify without the
// Hall (docs/EVIDENCE.md specifies every file): dir/entries.jsonl (every
// change, receipt and decision-chain entry, each with its chain, stream,
// sequence, signed entry, hash and signature), dir/keys.json (the
// published key set), dir/checkpoints/ (the checkpoints stored in the
// database) and dir/manifest.json. Everything comes from one read
// snapshot. dir must not exist or be empty.
func (s *SQLite) ExportBundle(ctx context.Context, dir string) (*BundleSummary, error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("ledger: export bundle: %s is not empty; give a new directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ledger: export bundle: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, BundleCheckpoints), 0o755); err != nil {
		return nil, fmt.Errorf("ledger: export bundle: %w", err)
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.wrap("export bundle", err)
	}
	defer tx.Rollback()
	sum := &BundleSummary{Format: BundleFormat, CreatedAt: time.Now().UTC().Format(wcp.TimeLayout)}

	f, err := os.Create(filepath.Join(dir, BundleEntries))
	if err != nil {
		return nil, fmt.Errorf("ledger: export bundle: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for _, q := range []struct {
		chain, sql string
		count      *int
	}{
		{ChainChanges, `SELECT '` + ChangeChain + `', seq, hash, signature, body FROM changes ORDER BY seq`, &sum.Changes},
		{ChainReceipts, `SELECT tenant_id, seq, receipt_hash, signature, body FROM receipts ORDER BY tenant_id, seq`, &sum.Receipts},
		{ChainDecisions, `SELECT stream, seq, hash, signature, body FROM entries ORDER BY stream, seq`, &sum.Decisions},
	} {
		rows, err := tx.QueryContext(ctx, q.sql)
		if err != nil {
			return nil, s.wrap("export bundle", err)
		}
		for rows.Next() {
			var stream, hash, sig, body string
			var seq int64
			if err := rows.Scan(&stream, &seq, &hash, &sig, &body); err != nil {
				rows.Close()
				return nil, s.wrap("export bundle", err)
			}
			*q.count++
			w.Write(bundleLine(q.chain, stream, seq, hash, sig, body))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.wrap("export bundle", err)
		}
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("ledger: export bundle: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("ledger: export bundle: %w", err)
	}

	if err := writeLegacyRows(ctx, tx, filepath.Join(dir, BundleLegacy)); err != nil {
		return nil, s.wrap("export bundle", err)
	}

	heads, err := currentHeads(tx)
	if err != nil {
		return nil, s.wrap("export bundle", err)
	}
	var ch Head
	var cseq int64
	if err := tx.QueryRowContext(ctx, `SELECT seq, change_id, hash FROM change_head WHERE chain = 1`).Scan(&cseq, &ch.ReceiptID, &ch.ReceiptHash); err == nil {
		ch.Chain, ch.Tenant, ch.Sequence = ChainChanges, ChangeChain, uint64(cseq)
		heads = append(heads, ch)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, s.wrap("export bundle", err)
	}
	if heads == nil {
		heads = []Head{}
	}
	sum.Heads = heads

	rows, err := tx.QueryContext(ctx, `SELECT body FROM checkpoints ORDER BY id`)
	if err != nil {
		return nil, s.wrap("export bundle", err)
	}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			rows.Close()
			return nil, s.wrap("export bundle", err)
		}
		var c Checkpoint
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("ledger: export bundle: stored checkpoint is malformed: %w", err)
		}
		if err := WriteCheckpoint(filepath.Join(dir, BundleCheckpoints), &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("ledger: export bundle: %w", err)
		}
		sum.Checkpoints++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap("export bundle", err)
	}

	ks, err := s.keySetTx(ctx, tx)
	if err != nil {
		return nil, err
	}
	sum.Keys = len(ks.Keys)
	if err := writeJSONFile(filepath.Join(dir, BundleKeys), ks); err != nil {
		return nil, fmt.Errorf("ledger: export bundle: %w", err)
	}
	if err := writeJSONFile(filepath.Join(dir, BundleManifest), sum); err != nil {
		return nil, fmt.Errorf("ledger: export bundle: %w", err)
	}
	return sum, nil
}

// bundleLine is one line of entries.jsonl. The signed entry is embedded
// byte for byte; a version 1 entry also carries its exact bytes as the
// string "body", because its canonical form is not RFC 8785.
func bundleLine(chain, stream string, seq int64, hash, sig, body string) []byte {
	b := make([]byte, 0, len(body)*2+200)
	b = append(b, `{"chain":`...)
	b = strconv.AppendQuote(b, chain)
	b, _ = appendJSONString(b, "stream", stream)
	b = append(b, `,"sequence":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"hash":`...)
	b = strconv.AppendQuote(b, hash)
	b = append(b, `,"signature":`...)
	b = strconv.AppendQuote(b, sig)
	b = append(b, `,"entry":`...)
	b = append(b, body...)
	var v struct {
		Version int `json:"version"`
	}
	if json.Unmarshal([]byte(body), &v) == nil && v.Version < formatV2 {
		b, _ = appendJSONString(b, "body", body)
	}
	return append(b, '}', '\n')
}

func appendJSONString(b []byte, key, v string) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return append(b, raw...), nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
