package ledger_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/wcphall/hall/host/ledger"
	"github.com/wcphall/hall/host/wcp"
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
