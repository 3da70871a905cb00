package main

import (
	"bytes"
	"flag"
	"iter"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/internal/ledger"
)

// TestReceiptsJSONStreamsTheSameBytes: `hall receipts --json` now writes
// one receipt at a time; its output must stay byte for byte what the
// whole slice printed through printSafeJSON was (terminal escapes
// included), for none, one and several receipts.
func TestReceiptsJSONStreamsTheSameBytes(t *testing.T) {
	r := func(i int, corr string) ledger.Receipt {
		return ledger.Receipt{Version: 2, ReceiptID: "r" + string(rune('0'+i)), Sequence: uint64(i + 1), CorrelationID: corr,
			DispatchedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), WorkerID: "org.x.w", TenantID: "org.acme",
			ControlsVerified: []string{"ctrl.a"}, Envelope: []byte(`{"network_egress":[]}`), Outcome: "ok"}
	}
	all := []ledger.Receipt{r(0, "plain"), r(1, "esc\x1b[31m red \u2028 line"), r(2, "<&> \"q\"")}
	for _, n := range []int{0, 1, 3} {
		rs := all[:n]
		want := printed(t, func(c *cli.Context) error {
			v := rs
			if v == nil {
				v = []ledger.Receipt{}
			}
			return printSafeJSON(c, v)
		})
		got := printed(t, func(c *cli.Context) error {
			return printReceiptsJSON(c, iter.Seq2[*ledger.Receipt, error](func(yield func(*ledger.Receipt, error) bool) {
				for i := range rs {
					if !yield(&rs[i], nil) {
						return
					}
				}
			}))
		})
		if !bytes.Equal(got, want) {
			t.Errorf("%d receipts: streamed\n%s\nwant\n%s", n, got, want)
		}
	}
}

func printed(t *testing.T, f func(*cli.Context) error) []byte {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Writer: &out, ErrWriter: &out}
	if err := f(cli.NewContext(app, flag.NewFlagSet("x", flag.ContinueOnError), nil)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
