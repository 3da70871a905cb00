package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/artifact"
	"github.com/wcphall/hall/internal/registry"
)

// ErrUnknownArtifact is returned by EnrollStored when the record names a
// module the artifact store does not hold.
var ErrUnknownArtifact = errors.New("the record's artifact_hash names no module in the artifact store")

// ErrOffline is returned by Run while the Hall is offline.
var ErrOffline = errors.New("HALL_OFFLINE: the Hall is offline and refuses dispatch (an administrator brings it online)")

// PutArtifact stores module bytes in the artifact store. When want is not
// zero, the bytes must hash to it (an upload names its digest) or nothing
// is stored and a *artifact.TamperedError is returned.
func (h *Hall) PutArtifact(module []byte, want wcp.Digest) (wcp.Digest, error) {
	got := wcp.Digest(sha256.Sum256(module))
	if !want.IsZero() && got != want {
		return got, &artifact.TamperedError{Want: want, Got: got, Path: "upload"}
	}
	store, err := h.artifacts()
	if err != nil {
		return got, err
	}
	return store.Put(context.Background(), module)
}

// EnrollStored enrolls a record whose artifact_hash names a module already
// in the artifact store (the seed's POST /enroll). The module is read back
// and verified before anything is enrolled. who is who enrolls, as in
// EnrollRequest.Actor. A record whose artifact_hash names no stored module
// but is its own PyHall record hash enrolls as a routing-only record
// (EnrollRecord); any other unknown artifact_hash is a *RecordHashError
// (errors.Is ErrUnknownArtifact). A record without a valid artifact_hash
// is an *EnrollError listing every problem of the record. Like Enroll, it is refused with ErrClosed once Close
// has begun, and waited for by Close once admitted.
func (h *Hall) EnrollStored(ctx context.Context, record []byte, who string) (*EnrollResult, error) {
	ctx, exit, ok := h.life.enter(ctx)
	if !ok {
		return nil, ErrClosed
	}
	defer exit()
	var head struct {
		ArtifactHash string `json:"artifact_hash"`
	}
	if err := json.Unmarshal(record, &head); err != nil {
		return nil, &EnrollError{Source: "record", Problems: []registry.Problem{{Message: "not a JSON object: " + err.Error()}}}
	}
	if head.ArtifactHash == "" {
		return nil, recordProblems(record, h.Config().AllowUnknownRecordFields, registry.Problem{Field: "artifact_hash", Message: `is required: "sha256:<hex>" of a module uploaded with PUT /artifacts/sha256:<hex>, or, for a routing-only record, the record's PyHall record hash`})
	}
	d, err := wcp.ParseDigest(head.ArtifactHash)
	if err != nil {
		return nil, recordProblems(record, h.Config().AllowUnknownRecordFields, registry.Problem{Field: "artifact_hash", Message: `must be "sha256:" followed by 64 lowercase hex characters`})
	}
	store, err := h.artifacts()
	if err != nil {
		return nil, err
	}
	module, err := store.Get(ctx, d)
	if errors.Is(err, artifact.ErrNotFound) {
		// No such module: a routing-only record enrolled PyHall's way,
		// whose artifact_hash is its own record hash (pyenroll.go).
		want, herr := PyHallRecordHash(record)
		if herr == nil && want == head.ArtifactHash {
			if err := h.checkAdmin(ctx, actor(who)); err != nil {
				return nil, err
			}
			return h.enrollRoutingOnly(ctx, record, want, actor(who))
		}
		return nil, &RecordHashError{Given: head.ArtifactHash, Expected: want}
	}
	if err != nil {
		return nil, err
	}
	return h.Enroll(ctx, EnrollRequest{Module: module, Record: record, RecordSource: "record", Actor: who})
}

// Online reports whether the Hall accepts dispatches. A Hall starts
// online.
func (h *Hall) Online() bool { return !h.offline.Load() }

// SetOnline brings the Hall online or takes it offline. Offline, Run
// refuses every dispatch with ErrOffline; Decide and Route still answer.
func (h *Hall) SetOnline(online bool) { h.offline.Store(!online) }

// ErrClosed is returned by every Hall method that needs the Hall's state
// after Close: a closed Hall stays closed.
var ErrClosed error = &codedError{wcp.CodeHallClosed, "the Hall is closed"}

// recordProblems is an *EnrollError listing p and every problem the record
// has besides (the schema's required fields, ids…): a caller fixes them
// all at once.
func recordProblems(record []byte, allowUnknown bool, p registry.Problem) error {
	probs := []registry.Problem{p}
	var m map[string]json.RawMessage
	if json.Unmarshal(record, &m) == nil {
		delete(m, "artifact_hash")
		if raw, err := json.Marshal(m); err == nil {
			var re *registry.RecordError
			if _, err := registry.ValidateWith(raw, registry.Options{AllowUnknownFields: allowUnknown}); errors.As(err, &re) {
				probs = append(probs, re.Problems...)
			}
		}
	}
	slices.SortStableFunc(probs, func(a, b registry.Problem) int { return strings.Compare(a.Field, b.Field) })
	return &EnrollError{Source: "record", Problems: probs}
}
