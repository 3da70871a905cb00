package ledger

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// chainReceipts appends a root and a hop below it (signed, well-formed),
// letting edit change them before they are appended.
func chainReceipts(t *testing.T, s *SQLite, edit func(root, hop *Receipt)) {
	t.Helper()
	root, hop := newReceipt("org.acme", 1), newReceipt("org.acme", 2)
	hop.CorrelationID = root.CorrelationID
	rb, hb := 30, 45
	root.BlastScore, hop.BlastScore = &rb, &hb
	root.ChainHops, root.ChainBlast = 1, 75
	hop.ParentDecisionID, hop.ChainDepth = root.DecisionID, 1
	edit(root, hop)
	ctx := context.Background()
	// A hop's receipt is committed before its parent's (the parent is
	// still running when its hop ends).
	if err := s.Append(ctx, hop); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, root); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyChainLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(root, hop *Receipt)
		want string // "" verifies
	}{
		{"linked", func(root, hop *Receipt) {}, ""},
		{"hop without its parent", func(root, hop *Receipt) { hop.ParentDecisionID = uuid.NewString() }, "a hop without its parent"},
		{"parent of another correlation", func(root, hop *Receipt) { hop.CorrelationID = "corr-other" }, "inherits its parent's"},
		{"wrong depth", func(root, hop *Receipt) { hop.ChainDepth = 2 }, "names a parent at depth 0"},
		{"root hop count", func(root, hop *Receipt) { root.ChainHops = 2 }, "records 2 hops"},
		{"root blast", func(root, hop *Receipt) { root.ChainBlast = 10 }, "chain blast of 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			chainReceipts(t, s, tc.edit)
			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if !rep.OK() {
					t.Fatalf("breaks %v, want none", rep.Breaks)
				}
				return
			}
			if rep.OK() || !strings.Contains(rep.Breaks[0].Reason, tc.want) {
				t.Fatalf("breaks %v, want one saying %q", rep.Breaks, tc.want)
			}
		})
	}
}

// The independent Node verifier checks the same chain links in a bundle.
func TestVerifyChainLinksNode(t *testing.T) {
	script := nodeVerifier(t)
	for _, tc := range []struct {
		name string
		edit func(root, hop *Receipt)
		want string // "" verifies
	}{
		{"linked", func(root, hop *Receipt) {}, ""},
		{"hop without its parent", func(root, hop *Receipt) { hop.ParentDecisionID = uuid.NewString() }, "a hop without its parent"},
		{"root hop count", func(root, hop *Receipt) { root.ChainHops = 3 }, "records 3 hops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			chainReceipts(t, s, tc.edit)
			bundle := filepath.Join(t.TempDir(), "bundle")
			if _, err := s.ExportBundle(context.Background(), bundle); err != nil {
				t.Fatal(err)
			}
			out, code := runNode(t, script, nil, bundle)
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("node verifier: exit %d\n%s", code, out)
				}
				return
			}
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("node verifier: exit %d, want a failure saying %q\n%s", code, tc.want, out)
			}
		})
	}
}
