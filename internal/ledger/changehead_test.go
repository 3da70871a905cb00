package ledger

import (
	"encoding/json"
	"reflect"
	"testing"
)

// parseStoredChange reads the members changesToHead checks as
// json.Unmarshal does, for every valid JSON body (the fast path's
// differential test).
func FuzzParseStoredChange(f *testing.F) {
	for _, s := range []string{
		`{"actor":"hall","at":"2026-01-01T00:00:00Z","body":{"a":[1,2,{"kind":"x"}],"s":"q\"uote"},"change_id":"chg_1","digest":"sha256:00","kind":"approval_used","prev_hash":"sha256:ab","sequence":3,"signing_key_id":"k","subject":"apr_1","version":2}`,
		`{"change_id":"chg_1","kind":"enroll","prev_hash":null,"subject":"w"}`,
		`{"kind":"a","kind":"b"}`,
		`{"Kind":"a"}`,
		`{"kind":"\u0061"}`,
		`{ "kind": "a" }`,
		`{"kind":null,"subject":1}`,
		`{}`,
		`{"x":[],"y":{},"z":-1.5e+3,"t":true,"f":false,"n":null,"subject":"é"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var fast storedChange
		err := parseStoredChange(body, &fast)
		if !json.Valid([]byte(body)) {
			return
		}
		var slow storedChange
		serr := json.Unmarshal([]byte(body), &slow)
		if (err == nil) != (serr == nil) {
			t.Fatalf("%s: parseStoredChange %v, json.Unmarshal %v", body, err, serr)
		}
		if err == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s: parseStoredChange %+v, json.Unmarshal %+v", body, fast, slow)
		}
	})
}
