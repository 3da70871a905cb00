package host

import (
	"context"
	"fmt"
	"strings"

	"github.com/wcphall/hall/internal/pgsource"
)

// OpenPostgresSource opens the snapshot inputs kept in the PostgreSQL
// database dsn: rules, policy set, hall.json and enrolled records, each
// stored as versions (every Put adds one; the Hall records each snapshot
// it loads as a change entry, as for files). Watch is told of a change
// committed through any node or CLI by LISTEN/NOTIFY, and by a check of
// the newest version every half second should a notification be lost.
//
// Documents are named db:rules, db:policy, db:config and
// db:enrolled/<worker_id>.json in messages and evidence.
func OpenPostgresSource(dsn string) (SnapshotSource, error) {
	s, err := pgsource.Open(dsn)
	if err != nil {
		return nil, err
	}
	return &pgSource{s: s}, nil
}

type pgSource struct{ s *pgsource.Store }

func (p *pgSource) Close() error { return p.s.Close() }

func pgDocName(kind DocKind) string { return "db:" + string(kind) }

func pgRecordName(id string) string { return "db:enrolled/" + id + ".json" }

func (p *pgSource) Load(ctx context.Context) (*SnapshotDocs, error) {
	docs, _, err := p.s.Load(ctx)
	if err != nil {
		return nil, err
	}
	out := &SnapshotDocs{
		Rules:  Doc{Name: pgDocName(DocRules)},
		Policy: Doc{Name: pgDocName(DocPolicy)},
		Config: Doc{Name: pgDocName(DocConfig)},
		Trust:  Doc{Name: pgDocName(DocTrust)},
	}
	for _, d := range docs {
		switch d.Kind {
		case string(DocRules):
			out.Rules = Doc{Name: pgDocName(DocRules), Present: true, Data: d.Data}
		case string(DocPolicy):
			out.Policy = Doc{Name: pgDocName(DocPolicy), Present: true, Data: d.Data}
		case string(DocConfig):
			out.Config = Doc{Name: pgDocName(DocConfig), Present: true, Data: d.Data}
		case string(DocTrust):
			out.Trust = Doc{Name: pgDocName(DocTrust), Present: true, Data: d.Data}
		case pgsource.KindRecord:
			out.Records = append(out.Records, RecordDoc{Name: pgRecordName(d.Name), Data: d.Data})
		}
	}
	return out, nil
}

func checkKind(kind DocKind) error {
	switch kind {
	case DocRules, DocPolicy, DocConfig, DocTrust:
		return nil
	}
	return fmt.Errorf("snapshot source: unknown document kind %q (rules, policy, config or trust)", kind)
}

func (p *pgSource) Get(ctx context.Context, kind DocKind) (Doc, error) {
	if err := checkKind(kind); err != nil {
		return Doc{}, err
	}
	d, err := p.s.Get(ctx, string(kind), "")
	if err != nil {
		return Doc{}, err
	}
	return Doc{Name: pgDocName(kind), Present: d.Data != nil, Data: d.Data}, nil
}

func (p *pgSource) Put(ctx context.Context, kind DocKind, data []byte, ifMatch string) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if data != nil {
		data = append([]byte{}, data...) // an empty document is present
	}
	return p.s.Put(ctx, string(kind), "", data, func(cur pgsource.Doc) error {
		return CheckIfMatch(Doc{Name: pgDocName(kind), Present: cur.Data != nil, Data: cur.Data}, ifMatch)
	})
}

func (p *pgSource) PutRecord(ctx context.Context, workerID string, data []byte) (string, error) {
	if workerID == "" || strings.ContainsAny(workerID, `/\`) || strings.Contains(workerID, "..") {
		return "", fmt.Errorf("snapshot source: worker id %q cannot name a record (empty, a path separator or ..)", workerID)
	}
	if data == nil {
		data = []byte{}
	}
	if err := p.s.Put(ctx, pgsource.KindRecord, workerID, data, nil); err != nil {
		return "", err
	}
	return pgRecordName(workerID), nil
}

func (p *pgSource) Watch(ctx context.Context, notify func(error)) error {
	return p.s.Watch(ctx, notify)
}
