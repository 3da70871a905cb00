package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// batchDecisions records n decisions per tenant in one batch: the
// committer is held by a stall while they queue, so they commit together
// (without savepoints: every write of the batch is pure).
func batchDecisions(t *testing.T, s *SQLite, n int, tenants ...string) {
	t.Helper()
	st := stallNow(t, s)
	var errs []<-chan error
	for i := range n {
		for _, tenant := range tenants {
			d := newDecision(tenant, "allowed", i)
			errs = append(errs, async(func() error { return s.RecordDecision(context.Background(), d) }))
		}
	}
	waitQueued(t, s, len(errs))
	st.release(t)
	for _, c := range errs {
		if err := recv(t, c); err != nil {
			t.Fatal(err)
		}
	}
}

// entrySigs returns the signature of each entry of stream, by sequence.
func entrySigs(t *testing.T, db *sql.DB, stream string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT signature FROM entries WHERE stream = ? ORDER BY seq`, stream)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sig string
		if err := rows.Scan(&sig); err != nil {
			t.Fatal(err)
		}
		out = append(out, sig)
	}
	return out
}

// TestOneSignaturePerStreamPerCommit: a batch signs only the last entry of
// each stream; the ledger and the independent Node verifier accept the
// entries before it through the hash links.
func TestOneSignaturePerStreamPerCommit(t *testing.T) {
	s := openT(t, t.TempDir())
	recordDecisions(t, s, "a", "allowed") // alone: signed
	batchDecisions(t, s, 4, "a", "b")
	db := rawDB(t, s)
	for stream, want := range map[string][]bool{"a": {true, false, false, false, true}, "b": {false, false, false, true}} {
		sigs := entrySigs(t, db, stream)
		if len(sigs) != len(want) {
			t.Fatalf("stream %s has %d entries, want %d", stream, len(sigs), len(want))
		}
		for i, signed := range want {
			if (sigs[i] != "") != signed {
				t.Errorf("stream %s entry %d signed=%v, want %v", stream, i+1, sigs[i] != "", signed)
			}
		}
	}
	if rep := verifyOK(t, s, nil); rep.Decisions != 9 {
		t.Fatalf("verified %d entries, want 9", rep.Decisions)
	}

	script := nodeVerifier(t)
	bundle := filepath.Join(t.TempDir(), "bundle")
	if _, err := s.ExportBundle(context.Background(), bundle); err != nil {
		t.Fatal(err)
	}
	out, code := runNode(t, script, nil, bundle)
	if code != 0 || !strings.Contains(out, "verified 10 entries") { // 9 and the schema change
		t.Fatalf("node verifier: exit %d\n%s", code, out)
	}
	// Without the signature of stream b's last entry, nothing covers b.
	path := filepath.Join(bundle, BundleEntries)
	orig, _ := os.ReadFile(path)
	lines := bytes.Split(orig, []byte("\n"))
	cut := false
	for i, l := range lines {
		if bytes.Contains(l, []byte(`"stream":"b"`)) && bytes.Contains(l, []byte(`"sequence":4`)) {
			lines[i] = replaceSignature(t, l)
			cut = true
		}
	}
	if !cut {
		t.Fatal("stream b's fourth entry is not in the bundle")
	}
	os.WriteFile(path, bytes.Join(lines, []byte("\n")), 0o644)
	if out, code := runNode(t, script, nil, bundle); code != 1 || !strings.Contains(out, "no later signed entry") {
		t.Errorf("unsigned tail: exit %d\n%s", code, out)
	}
}

func replaceSignature(t *testing.T, line []byte) []byte {
	t.Helper()
	i := bytes.Index(line, []byte(`"signature":"`))
	if i < 0 {
		t.Fatalf("no signature in %s", line)
	}
	j := bytes.IndexByte(line[i+len(`"signature":"`):], '"')
	return append(append(append([]byte(nil), line[:i]...), `"signature":""`...), line[i+len(`"signature":"`)+j+1:]...)
}

// TestUnsignedEntriesNeedTheirCover: an entry without a signature is
// evidence only while a signed entry of the same commit still covers it.
func TestUnsignedEntriesNeedTheirCover(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper []string
		want   []string
	}{
		{"signed tail deleted, head moved back", []string{
			`DELETE FROM entries WHERE stream = 'a' AND seq = 3`,
			`DELETE FROM decisions WHERE decision_id = (SELECT entry_id FROM entries WHERE stream = 'a' AND seq = 3)`,
			`UPDATE entry_heads SET seq = 2, entry_id = (SELECT entry_id FROM entries WHERE stream = 'a' AND seq = 2), hash = (SELECT hash FROM entries WHERE stream = 'a' AND seq = 2) WHERE stream = 'a'`,
		}, []string{"entries 1..2 are unsigned and no signed entry covers them: the stream ends"}},
		{"signature stripped from the tail", []string{
			`UPDATE entries SET signature = '' WHERE stream = 'a' AND seq = 3`,
		}, []string{"entries 1..3 are unsigned and no signed entry covers them: the stream ends"}},
		{"tail signature replaced", []string{
			`UPDATE entries SET signature = (SELECT signature FROM entries WHERE stream = 'b' AND seq = 3) WHERE stream = 'a' AND seq = 3`,
		}, []string{"entries 1..2 are unsigned and no signed entry covers them: entry 3, which would cover them, fails", "signature does not verify"}},
		{"unsigned entry altered", []string{
			`UPDATE entries SET body = replace(body, '"cap.doc.summarize"', '"cap.doc.summarizf"') WHERE stream = 'a' AND seq = 2`,
		}, []string{"entry 1 is unsigned and no signed entry covers it: entry 2, which would cover them, fails", "entry altered"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			batchDecisions(t, s, 3, "a", "b")
			verifyOK(t, s, nil)
			db := rawEvidenceDB(t, s)
			before := dump(t, db)
			for _, q := range tc.tamper {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if dump(t, db) == before {
				t.Fatal("the tampering changed nothing")
			}
			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range rep.Breaks {
				got = append(got, b.Reason)
			}
			all := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("breaks:\n%s\nwant one containing %q", all, w)
				}
			}
			for _, b := range rep.Breaks {
				if b.Tenant != "a" {
					t.Errorf("break in stream %q, which was not touched: %s", b.Tenant, b.Reason)
				}
			}
		})
	}
}

// dump is the entries table as text, to see that a tampering changed it.
func dump(t *testing.T, db *sql.DB) string {
	t.Helper()
	var out string
	if err := db.QueryRow(`SELECT group_concat(stream || seq || signature || hash || body, '|') FROM entries`).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}
