package router

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/google/uuid"
)

// ids hands out decision ids from a buffer of crypto/rand bytes refilled
// 16 ids at a time: one read per 16 decisions instead of one per
// decision, and no allocation. It is the package's own pool, not
// uuid.EnableRandPool, which would change the setting for the whole
// process of an embedder.
//
// The ids are UUID version 7 (RFC 9562): the first 48 bits are the Unix
// time in milliseconds, the other 74 free bits random. The ledger keys
// decisions, their chain entries and their events by decision id; random
// (version 4) keys made every insert land on a random page of three
// indexes, and time-ordered keys append to the end of each instead: a
// quarter less written per decision at /wcp/route (issue 12,
// internal/ledger/RATIONALE.md). Receipt ids are version 7 too.
var ids struct {
	sync.Mutex
	buf  [16 * 16]byte
	left int // ids not yet handed out, from the end of buf
}

func newID() (id uuid.UUID) {
	ids.Lock()
	if ids.left == 0 {
		if _, err := rand.Read(ids.buf[:]); err != nil {
			ids.Unlock()
			return uuid.Must(uuid.NewV7())
		}
		ids.left = len(ids.buf) / 16
	}
	ids.left--
	copy(id[:], ids.buf[ids.left*16:])
	ids.Unlock()
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().UnixMilli()))
	copy(id[:6], ms[2:])
	id[6] = (id[6] & 0x0f) | 0x70 // version 7
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 9562 variant
	return id
}
