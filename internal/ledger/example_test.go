package ledger_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "hall-state-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	l, err := ledger.Open(dir) // creates dir/hall.db and dir/keys/ed25519.key
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	sum := func(s string) string { return wcp.Digest(sha256.Sum256([]byte(s))).String() }
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		r := &ledger.Receipt{
			TenantID:       "acme",
			CorrelationID:  fmt.Sprintf("corr-%d", i),
			DecisionID:     fmt.Sprintf("decision-%d", i),
			DispatchedAt:   time.Now(),
			WorkerID:       "org.acme.summarizer",
			CapabilityID:   "cap.doc.summarize",
			PolicyDecision: "ALLOW",
			ArtifactHash:   sum("module"),
			RequestHash:    sum("request"),
			InputHash:      sum("input"),
			OutputHash:     sum("output"),
			Outcome:        "ok",
		}
		if err := l.Append(ctx, r); err != nil {
			log.Fatal(err)
		}
		fmt.Println("receipt", r.Sequence, "links to previous:", r.PrevReceiptHash != "")
	}

	rep, err := l.Verify(ctx, nil) // nil: verify with the ledger's own key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("streams:", rep.Streams, "receipts:", rep.Receipts, "ok:", rep.OK())
	// Output:
	// receipt 1 links to previous: false
	// receipt 2 links to previous: true
	// streams: 1 receipts: 2 ok: true
}

func ExampleSQLite_RecordChange() {
	dir, err := os.MkdirTemp("", "hall-state-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := ledger.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	sum := func(s string) string { return wcp.Digest(sha256.Sum256([]byte(s))).String() }
	ctx := context.Background()
	record := []byte(`{"worker_id":"org.acme.summarizer"}`)
	for _, c := range []*ledger.Change{
		{Kind: ledger.ChangeEnroll, Subject: "org.acme.summarizer", Digest: sum(string(record)),
			ArtifactHash: sum("module"), Body: record, Actor: "local:alice"},
		{Kind: ledger.ChangeRules, Subject: "/srv/hall/rules.json", Digest: sum("rules file bytes"), Actor: "token:tok_0123456789ab"},
	} {
		if err := l.RecordChange(ctx, c); err != nil {
			log.Fatal(err)
		}
		fmt.Println("change", c.Sequence, c.Kind, "links to previous:", c.PrevHash != "")
	}

	enrollments, err := l.Changes(ctx, ledger.ChangeEnroll)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := l.Verify(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	// The ledger's first change is the schema version it was created at
	// (ledger.ChangeSchema), so the enrollment is change 2.
	fmt.Println("enrollments:", len(enrollments), "changes:", rep.Changes, "ok:", rep.OK())
	// Output:
	// change 2 enroll links to previous: true
	// change 3 rules links to previous: true
	// enrollments: 1 changes: 3 ok: true
}
