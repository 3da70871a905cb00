package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/storetest"
)

// The files of Options pass the storage contract every snapshot source
// passes.
func TestSnapshotSourceFiles(t *testing.T) {
	storetest.TestSnapshotSource(t, func(t *testing.T) host.SnapshotSource {
		return host.NewFileSource(host.Options{Dir: t.TempDir()})
	})
}

// So does the in-memory source below, which the Hall runs over.
func TestSnapshotSourceMemory(t *testing.T) {
	storetest.TestSnapshotSource(t, func(t *testing.T) host.SnapshotSource { return newMemSource() })
}

// memSource is a SnapshotSource that is not files: documents and records
// in maps, each change signalled to every watch.
type memSource struct {
	mu      sync.Mutex
	docs    map[host.DocKind][]byte
	records map[string][]byte // by Name
	subs    map[chan struct{}]bool
}

func newMemSource() *memSource {
	return &memSource{docs: map[host.DocKind][]byte{}, records: map[string][]byte{}, subs: map[chan struct{}]bool{}}
}

func (m *memSource) doc(k host.DocKind) host.Doc {
	d, ok := m.docs[k]
	return host.Doc{Name: "mem:" + string(k), Present: ok, Data: slices.Clone(d)}
}

func (m *memSource) Load(context.Context) (*host.SnapshotDocs, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	docs := &host.SnapshotDocs{Rules: m.doc(host.DocRules), Policy: m.doc(host.DocPolicy), Config: m.doc(host.DocConfig), Trust: m.doc(host.DocTrust)}
	for name, data := range m.records {
		docs.Records = append(docs.Records, host.RecordDoc{Name: name, Data: slices.Clone(data)})
	}
	slices.SortFunc(docs.Records, func(a, b host.RecordDoc) int { return strings.Compare(a.Name, b.Name) })
	return docs, nil
}

func (m *memSource) Get(_ context.Context, k host.DocKind) (host.Doc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc(k), nil
}

func (m *memSource) Put(_ context.Context, k host.DocKind, data []byte, ifMatch string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := host.CheckIfMatch(m.doc(k), ifMatch); err != nil {
		return err
	}
	if data == nil {
		delete(m.docs, k)
	} else {
		m.docs[k] = slices.Clone(data)
	}
	m.changed()
	return nil
}

func (m *memSource) PutRecord(_ context.Context, id string, data []byte) (string, error) {
	if id == "" {
		return "", errors.New("mem: a record needs a worker id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	name := "mem:records/" + id
	m.records[name] = slices.Clone(data)
	m.changed()
	return name, nil
}

// changed signals every watch; m.mu is held.
func (m *memSource) changed() {
	for c := range m.subs {
		select {
		case c <- struct{}{}:
		default: // one pending signal covers this change too
		}
	}
}

func (m *memSource) Watch(ctx context.Context, notify func(error)) error {
	c := make(chan struct{}, 1)
	m.mu.Lock()
	m.subs[c] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.subs, c)
		m.mu.Unlock()
	}()
	notify(nil)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c:
			notify(nil)
		}
	}
}

// A Hall runs over a snapshot source that is not files: it enrolls into
// it, decides and runs from it, picks up a change made through the source
// behind its back (as another node would) and records the snapshot it
// decides under. Failed at the starting commit: Options had no Source.
func TestHallOverMemorySource(t *testing.T) {
	ctx := context.Background()
	src := newMemSource()
	if err := src.Put(ctx, host.DocRules, []byte(rules), ""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h, err := host.Open(ctx, host.Options{Dir: dir, Stores: &host.Stores{Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })

	res, err := h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", ""), Actor: "local:test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecordPath != "mem:records/org.acme.tiny" {
		t.Errorf("RecordPath = %q, want the source's name of the record", res.RecordPath)
	}
	docs, err := src.Load(ctx)
	if err != nil || len(docs.Records) != 1 || !strings.Contains(string(docs.Records[0].Data), `"artifact_hash": "sha256:`) {
		t.Fatalf("the enrolled record is not in the source, sealed with its artifact_hash: %+v %v", docs, err)
	}
	for _, f := range []string{"rules.json", "enrolled", "hall.json", "policy.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the Hall wrote files of Options although it has a source (%v)", f, err)
		}
	}

	dec := h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	if dec.Denied || dec.MatchedRuleID != "tiny" {
		t.Fatalf("decision under the source's rules: denied %v, rule %q (%+v)", dec.Denied, dec.MatchedRuleID, dec.DenyReason)
	}
	run, err := h.Run(ctx, host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
	if err != nil || run.Decision.Denied {
		t.Fatalf("Run over the source: %v %+v", err, run)
	}

	// A change made through the source, not through this Hall.
	changed := make(chan struct{}, 16)
	defer h.OnChange(func() { changed <- struct{}{} })()
	watching(t, h)
	next := strings.Replace(rules, `"rule_id": "tiny"`, `"rule_id": "tiny-v2"`, 1)
	if err := src.Put(ctx, host.DocRules, []byte(next), ""); err != nil {
		t.Fatal(err)
	}
	for h.Rules().Rules[1].ID != "tiny-v2" {
		<-changed
	}
	dec = h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	if dec.MatchedRuleID != "tiny-v2" {
		t.Fatalf("after the source changed: rule %q, want tiny-v2", dec.MatchedRuleID)
	}
	last := lastSealed(t, h)
	if last.Manifest.Rules != digest([]byte(next)) || last.Actor != "file" {
		t.Errorf("the snapshot decided under is not the recorded one: manifest rules %s actor %q, want %s by file", last.Manifest.Rules, last.Actor, digest([]byte(next)))
	}
	store, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := store.Changes(ctx, "rules")
	if err != nil || len(rc) == 0 || rc[len(rc)-1].Subject != "mem:rules" || rc[len(rc)-1].Digest != digest([]byte(next)) {
		t.Errorf("the rules change is not recorded under the source's name: %+v %v", rc, err)
	}

	// Rules replaced through the Hall land in the source; a stale ifMatch
	// is refused by the source as well as by the Hall.
	third := strings.Replace(next, `"rule_id": "tiny-v2"`, `"rule_id": "tiny-v3"`, 1)
	if _, _, err := h.ReplaceRules(ctx, []byte(third), digest([]byte(next)), "local:test"); err != nil {
		t.Fatal(err)
	}
	if d, _ := src.Get(ctx, host.DocRules); string(d.Data) != third {
		t.Errorf("ReplaceRules did not store the rules in the source: %q", d.Data)
	}
	body, doc, err := h.RulesDocument()
	if err != nil || string(body) != third || doc != digest([]byte(third)) {
		t.Errorf("RulesDocument = %q %s %v", body, doc, err)
	}
}

// A configuration the source holds is parsed as hall.json is, and one that
// does not parse is refused naming the source's document.
func TestHallOverMemorySourceConfig(t *testing.T) {
	ctx := context.Background()
	src := newMemSource()
	src.Put(ctx, host.DocRules, []byte(rules), "")
	src.Put(ctx, host.DocConfig, []byte(`{"default_tenant": "org.mem"}`), "")
	h, err := host.Open(ctx, host.Options{Dir: t.TempDir(), Stores: &host.Stores{Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Config().DefaultTenant; got != "org.mem" {
		t.Errorf("DefaultTenant = %q, want the source's config", got)
	}
	h.Close(ctx)

	src.Put(ctx, host.DocConfig, []byte(`{"defualt_tenant": "x"}`), "")
	if _, err := host.Open(ctx, host.Options{Dir: t.TempDir(), Stores: &host.Stores{Source: src}}); err == nil || !strings.Contains(err.Error(), "mem:config") {
		t.Errorf("Open with a config that does not parse: %v, want an error naming mem:config", err)
	}
}

// A conditional rules replacement (If-Match naming the rules in force) must
// not overwrite a rules file edited on disk since it was loaded: the
// source checks the stored bytes, not only the snapshot. Failed at the
// starting commit: the edit was silently replaced.
func TestReplaceRulesKeepsAnEditNotYetReloaded(t *testing.T) {
	ctx := context.Background()
	h := newHall(t, host.Options{})
	store, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	before, err := store.Changes(ctx, "rules")
	if err != nil {
		t.Fatal(err)
	}
	inForce, cur, err := h.RulesDocument()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(host.DirOf(h), "rules.json")
	edited := strings.Replace(string(inForce), `"rule_id": "tiny"`, `"rule_id": "tiny-edited"`, 1)
	replaceFile(t, path, edited)
	mine := strings.Replace(string(inForce), `"rule_id": "tiny"`, `"rule_id": "tiny-mine"`, 1)
	_, _, err = h.ReplaceRules(ctx, []byte(mine), cur, "local:test")
	var re *host.RulesError
	if !errors.As(err, &re) || !errors.Is(err, host.ErrPreconditionFailed) {
		t.Errorf("ReplaceRules over an edit not yet reloaded: %v, want a *RulesError wrapping ErrPreconditionFailed", err)
	}
	if got, _ := os.ReadFile(path); string(got) != edited {
		t.Errorf("the edit on disk was overwritten:\n%s", got)
	}
	if after, err := store.Changes(ctx, "rules"); err != nil || len(after) != len(before) {
		t.Errorf("the refused replacement recorded a rules change (%d before, %d after, %v)", len(before), len(after), err)
	}
	if id := h.Rules().Rules[1].ID; id != "tiny" {
		t.Errorf("rules in force: rule %q, want the loaded rules unchanged", id)
	}
}

// failingWatch is a memory source whose change notifications cannot start.
type failingWatch struct{ *memSource }

func (failingWatch) Watch(context.Context, func(error)) error {
	return errors.New("mem: LISTEN refused")
}

// A source that cannot watch stops Hall.Watch with its error (the Hall
// would otherwise never hear of a change), and one that cannot load fails
// Open naming why.
func TestHallOverSourceErrors(t *testing.T) {
	ctx := context.Background()
	src := newMemSource()
	src.Put(ctx, host.DocRules, []byte(rules), "")
	h, err := host.Open(ctx, host.Options{Dir: t.TempDir(), Stores: &host.Stores{Source: failingWatch{src}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if err := h.Watch(ctx, nil); err == nil || !strings.Contains(err.Error(), "LISTEN refused") {
		t.Errorf("Watch over a source that cannot watch: %v, want its error", err)
	}

	src.Put(ctx, host.DocRules, nil, "")
	if _, err := host.Open(ctx, host.Options{Dir: t.TempDir(), Stores: &host.Stores{Source: src}}); err == nil || !strings.Contains(err.Error(), "mem:rules") {
		t.Errorf("Open over a source without rules: %v, want an error naming mem:rules", err)
	}
	h2, err := host.Open(ctx, host.Options{Dir: t.TempDir(), Stores: &host.Stores{Source: src}, MissingRulesOK: true})
	if err != nil {
		t.Fatalf("Open with MissingRulesOK over a source without rules: %v", err)
	}
	h2.Close(ctx)
}
