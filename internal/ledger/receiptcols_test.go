package ledger

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// receiptBodies are signed receipt bodies as the Hall writes them, with
// caller strings that need escapes, non-ASCII text and an envelope.
func receiptBodies(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for i, corr := range []string{"corr-1", `quote " and \ backslash`, "ünïcödé \u2028 😀", "tab\there", ""} {
		r := newReceipt("org.acme", i)
		r.Version, r.ReceiptID, r.Sequence, r.SigningKeyID = formatV2, "0190a6b8-0000-7000-8000-000000000001", uint64(i+1), "ed25519:0123456789abcdef"
		r.CorrelationID = corr
		if i%2 == 1 {
			r.PrevReceiptHash = digest("prev")
			r.RecordDigest = digest("record")
			r.Envelope = json.RawMessage(`{"egress":["api.example.com"],"filesystem_writes":[]}`)
		}
		b, err := r.CanonicalBody()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestScanReceiptColsReadsWhatTheHallWrites: the fast path is taken for
// the receipts the Hall writes whose kept members need no escape, and
// gives what json.Unmarshal gives.
func TestScanReceiptColsReadsWhatTheHallWrites(t *testing.T) {
	for i, b := range receiptBodies(t) {
		var fast, std receiptCols
		ok := scanReceiptCols(b, &fast)
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatal(err)
		}
		wantFast := !bytes.Contains(b, []byte(`\`))
		if ok != wantFast {
			t.Errorf("body %d: fast path taken %v, want %v\n%s", i, ok, wantFast, b)
		}
		if ok && !reflect.DeepEqual(fast, std) {
			t.Errorf("body %d: scanned %+v, json.Unmarshal %+v", i, fast, std)
		}
	}
}

// FuzzReceiptCols: on any input decodeReceiptCols gives json.Unmarshal's
// result and fails exactly when it fails.
func FuzzReceiptCols(f *testing.F) {
	for _, b := range receiptBodies(f) {
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, ` { "sequence" : 7 } `, `{"sequence":-1}`, `{"sequence":1.0}`, `{"sequence":18446744073709551616}`,
		`{"sequence":null,"receipt_id":null}`, `{"Receipt_ID":"x"}`, `{"receipt_id":"a","receipt_id":"b"}`,
		`{"prev_receipt_hash":"x","prev_receipt_hash":null}`, `{"privilege_envelope":null}`,
		`{"privilege_envelope": [1, {"a": "\u00e9"}] }`, `{"x":[1,2,{"y":[true,false,null]}]}`, `{"x":1e5,"y":-0.5E-3}`,
		`{"worker_id":"\u0041"}`, "{\"worker_id\":\"\xff\"}", `{"a":"b"}x`, `{"a" "b"}`, `{"a":01}`, `[]`, `"s"`,
		"{\"k\u212a\":1}", `{"sequence":5,}`, `{"x":"\q"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want receiptCols
		errGot := decodeReceiptCols(b, &got)
		errWant := json.Unmarshal(b, &want)
		if (errGot == nil) != (errWant == nil) {
			t.Fatalf("%q: decodeReceiptCols error %v, json.Unmarshal error %v", b, errGot, errWant)
		}
		if errWant == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeReceiptCols %+v, json.Unmarshal %+v", b, got, want)
		}
	})
}
