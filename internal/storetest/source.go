package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
)

// TestSnapshotSource checks the contract of host.SnapshotSource (its doc
// comment) on the sources open returns: each call gives an empty store of
// its own.
func TestSnapshotSource(t *testing.T, open func(t *testing.T) host.SnapshotSource) {
	ctx := context.Background()
	kinds := []host.DocKind{host.DocRules, host.DocPolicy, host.DocConfig, host.DocTrust}

	t.Run("EmptyHoldsNothing", func(t *testing.T) {
		src := open(t)
		docs, err := src.Load(ctx)
		if err != nil {
			t.Fatalf("Load of an empty source: %v", err)
		}
		for _, d := range []host.Doc{docs.Rules, docs.Policy, docs.Config, docs.Trust} {
			if d.Present || d.Data != nil {
				t.Errorf("empty source: %s is present (%q)", d.Name, d.Data)
			}
			if d.Name == "" {
				t.Error("empty source: a document has no Name (messages and evidence name it)")
			}
		}
		if len(docs.Records) != 0 {
			t.Errorf("empty source: %d records", len(docs.Records))
		}
	})

	t.Run("PutThenGetAndLoad", func(t *testing.T) {
		src := open(t)
		want := map[host.DocKind][]byte{}
		for i, k := range kinds {
			data := docVersion(k, i)
			if err := src.Put(ctx, k, data, ""); err != nil {
				t.Fatalf("Put %s: %v", k, err)
			}
			want[k] = data
		}
		docs, err := src.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[host.DocKind]host.Doc{host.DocRules: docs.Rules, host.DocPolicy: docs.Policy, host.DocConfig: docs.Config, host.DocTrust: docs.Trust}
		names := map[string]bool{}
		for _, k := range kinds {
			d := got[k]
			if !d.Present || !bytes.Equal(d.Data, want[k]) {
				t.Errorf("Load: %s = %q (present %v), want the bytes put, byte for byte: %q", k, d.Data, d.Present, want[k])
			}
			g, err := src.Get(ctx, k)
			if err != nil {
				t.Fatalf("Get %s: %v", k, err)
			}
			if g.Name != d.Name || g.Present != d.Present || !bytes.Equal(g.Data, d.Data) {
				t.Errorf("Get %s = %+v, Load has %+v", k, g, d)
			}
			if names[d.Name] {
				t.Errorf("two documents share the Name %q", d.Name)
			}
			names[d.Name] = true
		}
	})

	t.Run("PutReplacesAndNilRemoves", func(t *testing.T) {
		src := open(t)
		for _, k := range kinds {
			srcPut(t, src, k, docVersion(k, 1), "")
			srcPut(t, src, k, docVersion(k, 2), "")
			if d := srcGet(t, src, k); !d.Present || string(d.Data) != string(docVersion(k, 2)) {
				t.Errorf("%s after a second Put: %q, want the second document", k, d.Data)
			}
			srcPut(t, src, k, nil, "")
			if d := srcGet(t, src, k); d.Present || d.Data != nil {
				t.Errorf("%s after Put(nil): still present (%q)", k, d.Data)
			}
			// Removing what is absent is not an error.
			srcPut(t, src, k, nil, "")
		}
	})

	t.Run("IfMatch", func(t *testing.T) {
		src := open(t)
		for _, k := range kinds {
			v1, v2 := docVersion(k, 1), docVersion(k, 2)
			if err := src.Put(ctx, k, v1, srcDigest(v2)); !errors.Is(err, host.ErrPreconditionFailed) {
				t.Errorf("%s: Put over an absent document with ifMatch naming other bytes: %v, want ErrPreconditionFailed", k, err)
			}
			if d := srcGet(t, src, k); d.Present {
				t.Fatalf("%s: a Put refused by its precondition wrote %q", k, d.Data)
			}
			srcPut(t, src, k, v1, host.NoDocument)
			if err := src.Put(ctx, k, v2, host.NoDocument); !errors.Is(err, host.ErrPreconditionFailed) {
				t.Errorf("%s: Put with ifMatch NoDocument over a present document: %v, want ErrPreconditionFailed", k, err)
			}
			if err := src.Put(ctx, k, v2, srcDigest(v2)); !errors.Is(err, host.ErrPreconditionFailed) {
				t.Errorf("%s: Put with a stale ifMatch: %v, want ErrPreconditionFailed", k, err)
			}
			if d := srcGet(t, src, k); string(d.Data) != string(v1) {
				t.Fatalf("%s: refused Puts changed the document to %q", k, d.Data)
			}
			srcPut(t, src, k, v2, srcDigest(v1))
			if d := srcGet(t, src, k); string(d.Data) != string(v2) {
				t.Errorf("%s: Put with the current digest as ifMatch stored %q", k, d.Data)
			}
			srcPut(t, src, k, nil, srcDigest(v2))
			if d := srcGet(t, src, k); d.Present {
				t.Errorf("%s: Put(nil) with the current digest did not remove it", k)
			}
		}
	})

	t.Run("Records", func(t *testing.T) {
		src := open(t)
		ids := []string{"org.acme.b", "org.acme.a", "org.acme.c"}
		names := map[string]string{}
		for _, id := range ids {
			name, err := src.PutRecord(ctx, id, fmt.Appendf(nil, `{"worker_id": %q, "v": 1}`, id))
			if err != nil {
				t.Fatalf("PutRecord %s: %v", id, err)
			}
			if name == "" {
				t.Fatalf("PutRecord %s returned no Name", id)
			}
			names[id] = name
		}
		// A second enrollment of the same worker replaces its record.
		if _, err := src.PutRecord(ctx, "org.acme.a", []byte(`{"worker_id": "org.acme.a", "v": 2}`)); err != nil {
			t.Fatal(err)
		}
		docs, err := src.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(docs.Records) != len(ids) {
			t.Fatalf("Load: %d records, want %d (one per worker id): %+v", len(docs.Records), len(ids), docs.Records)
		}
		if !slices.IsSortedFunc(docs.Records, func(a, b host.RecordDoc) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("Load: records not in Name order: %v", srcRecordNames(docs.Records))
		}
		for _, r := range docs.Records {
			if r.Err != nil {
				t.Errorf("record %s: %v", r.Name, r.Err)
			}
			switch r.Name {
			case names["org.acme.a"]:
				if string(r.Data) != `{"worker_id": "org.acme.a", "v": 2}` {
					t.Errorf("record %s = %q, want the second PutRecord's bytes", r.Name, r.Data)
				}
			case names["org.acme.b"], names["org.acme.c"]:
			default:
				t.Errorf("Load returned record %q, which no PutRecord named (%v)", r.Name, names)
			}
		}
	})

	t.Run("RecordIDsThatCannotBeStoredAreRefused", func(t *testing.T) {
		src := open(t)
		for _, id := range []string{"", "..", "../escape", "a/b", `a\b`} {
			if _, err := src.PutRecord(ctx, id, []byte(`{}`)); err == nil {
				// A source may store any id safely; it must then not
				// let it reach another record or document.
				docs, lerr := src.Load(ctx)
				if lerr != nil {
					t.Fatalf("Load after PutRecord(%q): %v", id, lerr)
				}
				if docs.Rules.Present || docs.Policy.Present || docs.Config.Present {
					t.Errorf("PutRecord(%q) wrote a snapshot document", id)
				}
			}
		}
	})

	t.Run("WatchNotifiesEveryChange", func(t *testing.T) {
		src := open(t)
		ctx, cancel := context.WithCancel(ctx)
		calls := make(chan error, 64)
		done := make(chan error, 1)
		go func() {
			done <- src.Watch(ctx, func(err error) {
				select {
				case calls <- err:
				default: // coalesced: one pending call is enough
				}
			})
		}()
		// The first call says the watch is in place.
		select {
		case <-calls:
		case err := <-done:
			cancel()
			t.Fatalf("Watch returned before watching: %v", err)
		}
		// After each change, a Load begun after a later notification
		// sees it.
		changes := []func() (string, error){
			func() (string, error) {
				return "rules v1", src.Put(ctx, host.DocRules, []byte(`{"rules": 1}`), "")
			},
			func() (string, error) {
				return "policy v1", src.Put(ctx, host.DocPolicy, []byte(`{"policies": 1}`), "")
			},
			func() (string, error) {
				return "config v1", src.Put(ctx, host.DocConfig, []byte(`{"config": 1}`), "")
			},
			func() (string, error) {
				_, err := src.PutRecord(ctx, "org.acme.w", []byte(`{"worker_id": "org.acme.w"}`))
				return "record", err
			},
			func() (string, error) { return "rules removed", src.Put(ctx, host.DocRules, nil, "") },
		}
		for _, change := range changes {
			what, err := change()
			if err != nil {
				cancel()
				t.Fatalf("%s: %v", what, err)
			}
			seen := func() bool {
				docs, err := src.Load(ctx)
				if err != nil {
					return false
				}
				switch what {
				case "rules v1":
					return docs.Rules.Present
				case "policy v1":
					return docs.Policy.Present
				case "config v1":
					return docs.Config.Present
				case "record":
					return len(docs.Records) == 1
				default:
					return !docs.Rules.Present
				}
			}
			for !seen() {
				select {
				case <-calls:
				case err := <-done:
					cancel()
					t.Fatalf("Watch returned while watching (%s not notified yet): %v", what, err)
				}
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch after its context ended: %v, want nil", err)
		}
	})
}

func srcPut(t *testing.T, src host.SnapshotSource, k host.DocKind, data []byte, ifMatch string) {
	t.Helper()
	if err := src.Put(context.Background(), k, data, ifMatch); err != nil {
		t.Fatalf("Put %s: %v", k, err)
	}
}

func srcGet(t *testing.T, src host.SnapshotSource, k host.DocKind) host.Doc {
	t.Helper()
	d, err := src.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get %s: %v", k, err)
	}
	return d
}

func srcDigest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func srcRecordNames(rs []host.RecordDoc) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

// docVersion is version n of a document of kind k. A source stores bytes
// and nothing else, with one exception the contract allows: the files of
// Options read a trust.json that names key files relative to itself as
// its self-contained form, so the trust documents here are valid and
// self-contained (kept byte for byte).
func docVersion(k host.DocKind, n int) []byte {
	if k == host.DocTrust {
		return fmt.Appendf(nil, `{"namespaces": {"x.v%d.*": {"level": "audit"}}}`+"\n", n)
	}
	return fmt.Appendf(nil, `{"doc": %q, "v": %d}`+"\n", k, n)
}
