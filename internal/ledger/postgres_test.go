package ledger

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wcphall/hall/internal/pgsql"
	"github.com/wcphall/hall/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openPG opens the ledger of a database as a node with the node-local key
// directory home would.
func openPG(t testing.TB, dsn, home string, opts ...Option) *SQLite {
	t.Helper()
	s, err := OpenPostgres(dsn, home, opts...)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Every schema step has its PostgreSQL form, so that a schema version
// names the same tables on both databases.
func TestPostgresMigrationsMatch(t *testing.T) {
	if len(pgMigrations) != len(migrations) {
		t.Fatalf("%d PostgreSQL migrations for %d SQLite ones", len(pgMigrations), len(migrations))
	}
	for i := range migrations {
		if pgMigrations[i].name != migrations[i].name {
			t.Errorf("step %d: %q on PostgreSQL, %q on SQLite", i+1, pgMigrations[i].name, migrations[i].name)
		}
	}
}

// Three nodes (three opens of one database sharing one key) appending to
// the same tenants at once leave every chain linear: contiguous sequence
// numbers, each receipt linked to the one before, and Verify passes
// through any node. Two nodes opening a fresh database at once migrate it
// once.
func TestPostgresChainsLinearAcrossNodes(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	home := filepath.Join(t.TempDir(), "node")
	first := openPG(t, dsn, home)
	nodes := []*SQLite{first, openPG(t, dsn, home), openPG(t, dsn, home)}
	const perNode, workers = 40, 4
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*workers)
	for n, s := range nodes {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perNode; i++ {
					tenant := []string{"org.a", "org.b"}[(w+i)%2]
					if err := s.Append(context.Background(), newReceipt(tenant, n*10000+w*1000+i)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := len(nodes) * workers * perNode
	for _, s := range nodes {
		rep := verifyOK(t, s, nil)
		if rep.Receipts != total || rep.Streams != 2 {
			t.Fatalf("receipts %d streams %d, want %d and 2", rep.Receipts, rep.Streams, total)
		}
		var sum uint64
		for _, h := range rep.Heads {
			if h.Chain == ChainReceipts {
				sum += h.Sequence
			}
		}
		if sum != uint64(total) {
			t.Fatalf("receipt heads add up to %d, want %d (a gap or a fork)", sum, total)
		}
	}
	var steps int
	if err := first.r.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&steps); err != nil || steps != len(migrations) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", steps, err, len(migrations))
	}
}

// The database itself refuses a fork: a second receipt linked to the same
// predecessor, or under a sequence number already taken, is an error
// whatever wrote it (UNIQUE (tenant_id, seq) and (tenant_id, prev_hash)).
func TestPostgresRefusesFork(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := openPG(t, dsn, filepath.Join(t.TempDir(), "node"))
	appendN(t, s, "org.a", 2)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, q := range map[string]string{
		"same predecessor": `INSERT INTO receipts (tenant_id, seq, receipt_id, correlation_id, worker_id, dispatched_at, prev_receipt_hash, receipt_hash, signing_key_id, signature, body)
			SELECT tenant_id, 99, 'fork', correlation_id, worker_id, dispatched_at, prev_receipt_hash, receipt_hash, signing_key_id, signature, body FROM receipts WHERE seq = 2`,
		"same sequence": `INSERT INTO receipts (tenant_id, seq, receipt_id, correlation_id, worker_id, dispatched_at, prev_receipt_hash, receipt_hash, signing_key_id, signature, body)
			SELECT tenant_id, seq, 'fork', correlation_id, worker_id, dispatched_at, 'other', receipt_hash, signing_key_id, signature, body FROM receipts WHERE seq = 2`,
	} {
		_, err := db.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("%s: insert = %v, want a unique violation", name, err)
		}
	}
}

// Chains are locked apart on PostgreSQL: while another transaction holds
// tenant org.a's receipt chain, an append to org.b commits; org.a's waits
// for it and then links after it. Every chain verifies.
func TestPostgresChainsLockedApart(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s := openPG(t, dsn, filepath.Join(t.TempDir(), "node"))
	appendN(t, s, "org.a", 1)
	appendN(t, s, "org.b", 1)
	cfg, err := pgsql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := pgsql.OpenDB(cfg, pgsql.Dialect{WriteLock: pgLockKey})
	defer db.Close()
	tx, err := db.BeginTx(pgsql.WithChainLocks(ctx, []int32{chainLockKey("r:org.a")}), nil)
	if err != nil {
		t.Fatal(err)
	}
	other := make(chan error, 1)
	go func() { other <- s.Append(ctx, newReceipt("org.b", 2)) }()
	select {
	case err := <-other:
		if err != nil {
			t.Fatalf("append to org.b while org.a's chain is held: %v", err)
		}
	case <-time.After(30 * time.Second):
		tx.Rollback()
		t.Fatal("an append to org.b waited for org.a's chain lock (the chains are not locked apart)")
	}
	same := make(chan error, 1)
	go func() { same <- s.Append(ctx, newReceipt("org.a", 2)) }()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-same; err != nil {
		t.Fatalf("append to org.a after its chain was released: %v", err)
	}
	rep := verifyOK(t, s, nil)
	if rep.Receipts != 4 {
		t.Fatalf("%d receipts, want 4", rep.Receipts)
	}
}

// TestPostgresBatchRoundTrips: a batch of decisions costs a fixed number
// of round trips to the database whatever its size (issue 22: each
// decision cost two, its entry and its decisions row, plus one per lock),
// and what it stored reads back and verifies: entries in queue order,
// one head per chain, each decision's row and signed entry, and the
// denied and dry-run columns stored as SQLite stores them.
func TestPostgresBatchRoundTrips(t *testing.T) {
	s := openPG(t, pgtest.NewDatabase(t), t.TempDir())
	ctx := context.Background()
	if err := s.RecordDecision(ctx, newDecision("org.a", "allowed", 0)); err != nil {
		t.Fatal(err)
	}
	st := stallNow(t, s)
	const n = 32
	ds := make([]DecisionRecord, n)
	done := make([]<-chan error, n)
	for i := range ds {
		ds[i] = newDecision([]string{"org.a", "org.b"}[i%2], []string{"allowed", "denied", "dry"}[i%3], 1+i)
		d := ds[i]
		done[i] = async(func() error { return s.RecordDecision(ctx, d) })
		waitQueued(t, s, i+1)
	}
	commits, rt := s.commits.Load(), pgsql.RoundTrips()
	st.release(t)
	for i := range ds {
		if err := recv(t, done[i]); err != nil {
			t.Fatalf("decision %d: %v", i, err)
		}
	}
	if got := s.commits.Load() - commits; got != 2 {
		t.Fatalf("the stall and %d queued decisions took %d commits, want 2", n, got)
	}
	// The stall's COMMIT, then BEGIN with the locks, the signing key and
	// the heads of the 2 chains, then the batch's rows with COMMIT.
	if got, want := pgsql.RoundTrips()-rt, int64(1+1+1); got != want {
		t.Errorf("a batch of %d decisions on 2 chains took %d round trips, want %d", n, got, want)
	}
	for i, d := range ds {
		got, err := s.Decision(ctx, d.DecisionID)
		if err != nil {
			t.Fatalf("decision %d: %v", i, err)
		}
		if got.TenantID != d.TenantID || got.Denied != d.Denied || got.DryRun != d.DryRun || got.DenyCode != d.DenyCode {
			t.Errorf("decision %d reads back as %+v, recorded %+v", i, got, d)
		}
	}
	for _, c := range []struct {
		stream string
		seq    int
	}{{"org.a", 1 + n/2}, {"org.b", n / 2}} {
		var seq, rows int
		if err := s.r.QueryRow(`SELECT seq FROM entry_heads WHERE stream = ?`, c.stream).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		if err := s.r.QueryRow(`SELECT count(*) FROM decisions WHERE tenant_id = ? AND entry_seq IS NOT NULL AND decision = ''`, c.stream).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if seq != c.seq || rows != c.seq {
			t.Errorf("chain %s: head at %d with %d decisions rows, want %d", c.stream, seq, rows, c.seq)
		}
	}
	var order []string
	rows, err := s.r.Query(`SELECT entry_id FROM entries WHERE seq > 1 OR stream = 'org.b' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		order = append(order, id)
	}
	rows.Close()
	for i, d := range ds {
		if i >= len(order) || order[i] != d.DecisionID {
			t.Fatalf("entries inserted in the order %v, want the queue's", order)
		}
	}
	rep := verifyOK(t, s, nil)
	if rep.Decisions != n+1 {
		t.Errorf("Verify read %d decisions, want %d", rep.Decisions, n+1)
	}
}

// TestPostgresReceiptBatchRoundTrips: a batch of receipts costs a fixed
// number of round trips (issue 22: one more per receipt), each stream
// stays linear in queue order, and the heads move to the batch's last.
func TestPostgresReceiptBatchRoundTrips(t *testing.T) {
	s := openPG(t, pgtest.NewDatabase(t), t.TempDir())
	ctx := context.Background()
	first := appendN(t, s, "a", 1)[0]
	st := stallNow(t, s)
	const n = 16
	rs := make([]*Receipt, n)
	done := make([]<-chan error, n)
	for i := range rs {
		rs[i] = newReceipt([]string{"a", "b"}[i%2], 10+i)
		r := rs[i]
		done[i] = async(func() error { return s.Append(ctx, r) })
		waitQueued(t, s, i+1)
	}
	rt := pgsql.RoundTrips()
	st.release(t)
	for i := range rs {
		if err := recv(t, done[i]); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
	// The stall's COMMIT, then BEGIN with the locks, the signing key and
	// the heads of the 2 streams, then the batch's rows with COMMIT.
	if got, want := pgsql.RoundTrips()-rt, int64(1+1+1); got != want {
		t.Errorf("a batch of %d receipts on 2 streams took %d round trips, want %d", n, got, want)
	}
	prev := map[string]*Receipt{"a": first}
	for i, r := range rs {
		p := prev[r.TenantID]
		wantSeq, wantPrev := uint64(1), ""
		if p != nil {
			wantSeq, wantPrev = p.Sequence+1, p.ReceiptHash
		}
		if r.Sequence != wantSeq || r.PrevReceiptHash != wantPrev {
			t.Errorf("receipt %d of %s: seq %d prev %q, want %d %q", i, r.TenantID, r.Sequence, r.PrevReceiptHash, wantSeq, wantPrev)
		}
		prev[r.TenantID] = r
		got, err := s.Receipt(ctx, r.ReceiptID)
		if err != nil || got.ReceiptHash != r.ReceiptHash {
			t.Fatalf("receipt %d reads back as %+v, %v", i, got, err)
		}
	}
	for tenant, last := range prev {
		var seq int
		var id string
		if err := s.r.QueryRow(`SELECT seq, receipt_id FROM stream_heads WHERE tenant_id = ?`, tenant).Scan(&seq, &id); err != nil {
			t.Fatal(err)
		}
		if uint64(seq) != last.Sequence || id != last.ReceiptID {
			t.Errorf("stream %s: head at %d %s, want %d %s", tenant, seq, id, last.Sequence, last.ReceiptID)
		}
	}
	verifyOK(t, s, nil)
}

// TestPostgresBatchFailingRowFailsAlone: a row the database refuses when
// the batch's rows are inserted together (here a decision id used twice)
// fails its own write only; the batch runs again write by write and the
// others commit.
func TestPostgresBatchFailingRowFailsAlone(t *testing.T) {
	s := openPG(t, pgtest.NewDatabase(t), t.TempDir())
	ctx := context.Background()
	dup := newDecision("org.a", "allowed", 0)
	if err := s.RecordDecision(ctx, dup); err != nil {
		t.Fatal(err)
	}
	st := stallNow(t, s)
	ds := []DecisionRecord{newDecision("org.a", "allowed", 1), dup, newDecision("org.a", "denied", 2)}
	ds[1].CorrelationID = "again"
	done := make([]<-chan error, len(ds))
	for i := range ds {
		d := ds[i]
		done[i] = async(func() error { return s.RecordDecision(ctx, d) })
		waitQueued(t, s, i+1)
	}
	rc := newReceipt("a", 1)
	rcDone := async(func() error { return s.Append(ctx, rc) })
	waitQueued(t, s, len(ds)+1)
	st.release(t)
	for i := range ds {
		err := recv(t, done[i])
		if (i == 1) != (err != nil) {
			t.Errorf("decision %d: %v", i, err)
		}
	}
	if err := recv(t, rcDone); err != nil {
		t.Errorf("receipt: %v", err)
	}
	rep := verifyOK(t, s, nil)
	if rep.Decisions != 3 || rep.Receipts != 1 {
		t.Errorf("Verify read %d decisions and %d receipts, want 3 and 1", rep.Decisions, rep.Receipts)
	}
}
