package ledger

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment of TestHelperProcess.
const (
	helperEnv = "HALL_LEDGER_HELPER" // "append": append N receipts; "loop": append until killed
	dirEnv    = "HALL_LEDGER_DIR"
	tenantEnv = "HALL_LEDGER_TENANT"
	countEnv  = "HALL_LEDGER_N"
)

// TestHelperProcess is not a test: the process tests run the test binary
// again with this test selected to get a second, third… process writing
// the same ledger. It prints each receipt id after Append returns, so the
// parent knows which receipts were acknowledged.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for the multi-process tests")
	}
	s, err := Open(os.Getenv(dirEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Getenv(countEnv))
	tenant := os.Getenv(tenantEnv)
	out := bufio.NewWriter(os.Stdout)
	if mode == "burst" {
		burst(s, tenant, out)
	}
	for i := 0; mode == "loop" || i < n; i++ {
		r := newReceipt(tenant, i)
		if err := s.Append(context.Background(), r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		out.WriteString(r.ReceiptID + "\n")
		out.Flush()
	}
	s.Close()
	os.Exit(0)
}

// burst is a dispatching server's write pattern, until killed: 16
// goroutines each record a decision (with its telemetry), then its
// receipt and a batch of worker events, all group-committed together. It
// prints "d <decision id>", "r <receipt id>" and "e <correlation id>"
// after each acknowledgement.
func burst(s *SQLite, tenant string, out *bufio.Writer) {
	var mu sync.Mutex
	ack := func(kind, id string) {
		mu.Lock()
		out.WriteString(kind + " " + id + "\n")
		out.Flush()
		mu.Unlock()
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx := context.Background()
	for g := range 16 {
		go func() {
			for i := g; ; i += 16 {
				t := fmt.Sprintf("%s%d", tenant, i%3)
				d := newDecision(t, "allowed", i)
				d.CorrelationID = fmt.Sprintf("burst-%d", i)
				if err := s.RecordDecision(ctx, d); err != nil {
					fail(err)
				}
				ack("d", d.DecisionID)
				r := newReceipt(t, i)
				r.DecisionID, r.CorrelationID = d.DecisionID, d.CorrelationID
				if err := s.Append(ctx, r); err != nil {
					fail(err)
				}
				ack("r", r.ReceiptID)
				evs := []json.RawMessage{[]byte(`{"event_id":"evt.w.one"}`), []byte(`{"event_id":"evt.w.two","n":1}`)}
				if err := s.RecordDecisionEvents(ctx, d.DecisionID, d.CorrelationID, evs); err != nil {
					fail(err)
				}
				ack("e", d.CorrelationID)
			}
		}()
	}
	select {}
}

func helper(t *testing.T, mode, dir, tenant string, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, dirEnv+"="+dir, tenantEnv+"="+tenant, countEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	return cmd
}

func TestMultiProcessAppends(t *testing.T) {
	dir := t.TempDir()
	// No Open before the children start: they also race to create the
	// database, run the migrations and generate the key.
	const each = 40
	tenants := []string{"a", "b", "a"}
	var wg sync.WaitGroup
	errs := make(chan error, len(tenants)+1)
	acked := make(chan []string, len(tenants))
	for _, tenant := range tenants {
		cmd := helper(t, "append", dir, tenant, each)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cmd.Output()
			if err != nil {
				errs <- fmt.Errorf("child for tenant %s: %v", tenant, err)
			}
			acked <- strings.Fields(string(out))
		}()
	}
	// This process appends to the shared stream at the same time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		s, err := Open(dir)
		if err != nil {
			errs <- err
			return
		}
		defer s.Close()
		for i := 0; i < each; i++ {
			if err := s.Append(context.Background(), newReceipt("a", 500+i)); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	close(acked)
	for err := range errs {
		t.Fatal(err)
	}
	s := openT(t, dir)
	rep := verifyOK(t, s, nil)
	if rep.Receipts != 4*each || rep.Streams != 2 {
		t.Fatalf("receipts %d streams %d, want %d and 2", rep.Receipts, rep.Streams, 4*each)
	}
	for _, h := range rep.Heads {
		if h.Chain == ChainChanges {
			continue
		}
		want := map[string]uint64{"a": 3 * each, "b": each}[h.Tenant]
		if h.Sequence != want {
			t.Errorf("stream %s ends at %d, want %d", h.Tenant, h.Sequence, want)
		}
	}
	for ids := range acked {
		if len(ids) != each {
			t.Errorf("a child acknowledged %d receipts, want %d", len(ids), each)
		}
		for _, id := range ids {
			if _, err := s.Receipt(context.Background(), id); err != nil {
				t.Errorf("acknowledged receipt: %v", err)
			}
		}
	}
}

// TestSIGKILLMidBurst kills a child appending as fast as it can. Every
// receipt it acknowledged must survive, and the ledger must still open
// and verify.
func TestSIGKILLMidBurst(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	appendN(t, s, "a", 3) // the child continues an existing stream
	s.Close()

	cmd := helper(t, "loop", dir, "a", 0)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var acked []string
	deadline := time.Now().Add(20 * time.Second)
	for len(acked) < 40 && sc.Scan() {
		acked = append(acked, sc.Text())
		if time.Now().After(deadline) {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Lines written before the kill are acknowledged receipts too.
	rest, _ := io.ReadAll(stdout)
	acked = append(acked, strings.Fields(string(rest))...)
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	if len(acked) < 40 {
		t.Fatalf("child acknowledged only %d receipts before the deadline", len(acked))
	}

	s = openT(t, dir)
	rep := verifyOK(t, s, nil)
	if rep.Receipts < 3+len(acked) {
		t.Errorf("%d receipts stored, but 3 + %d were acknowledged", rep.Receipts, len(acked))
	}
	for _, id := range acked {
		if _, err := s.Receipt(context.Background(), id); err != nil {
			t.Errorf("acknowledged receipt lost: %v", err)
		}
	}
	// The stream continues where the killed process stopped.
	r := appendN(t, s, "a", 1)[0]
	if r.Sequence != uint64(rep.Receipts+1) {
		t.Errorf("next receipt has sequence %d, want %d", r.Sequence, rep.Receipts+1)
	}
	verifyOK(t, s, nil)
	t.Logf("killed after %d acknowledged receipts; %d stored", len(acked), rep.Receipts-3)
}

// TestSIGKILLMidGroupCommit kills a child writing decisions, receipts and
// worker events from 16 goroutines (the lean write path: prepared
// statements, multi-row event inserts, savepoints in memory, one fsync per
// batch). Everything it acknowledged must be in the reopened ledger,
// which must verify.
func TestSIGKILLMidGroupCommit(t *testing.T) {
	dir := t.TempDir()
	cmd := helper(t, "burst", dir, "org.t", 0)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	deadline := time.Now().Add(30 * time.Second)
	for len(lines) < 600 && time.Now().Before(deadline) && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	lines = append(lines, strings.Split(strings.TrimSpace(string(rest)), "\n")...)
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	if len(lines) < 600 {
		t.Fatalf("child acknowledged only %d writes before the deadline", len(lines))
	}
	s := openT(t, dir)
	ctx := context.Background()
	var d, r, e int
	for _, l := range lines {
		kind, id, ok := strings.Cut(l, " ")
		if !ok {
			continue // a line cut by the kill was not acknowledged
		}
		switch kind {
		case "d":
			d++
			if _, err := s.Decision(ctx, id); err != nil {
				t.Errorf("acknowledged decision lost: %v", err)
			}
		case "r":
			r++
			if _, err := s.Receipt(ctx, id); err != nil {
				t.Errorf("acknowledged receipt lost: %v", err)
			}
		case "e":
			e++
			// The decision's envelope and the worker's two events.
			if evs, err := s.Events(ctx, id); err != nil || len(evs) != 3 {
				t.Errorf("events of %s: %d (%v), want 3", id, len(evs), err)
			}
		}
	}
	rep := verifyOK(t, s, nil)
	if rep.Receipts < r || rep.Decisions < d+e {
		t.Errorf("stored %d receipts and %d entries; %d receipts and %d decisions + %d event batches were acknowledged", rep.Receipts, rep.Decisions, r, d, e)
	}
	t.Logf("killed after %d decisions, %d receipts, %d event batches acknowledged; %d receipts stored", d, r, e, rep.Receipts)
}
