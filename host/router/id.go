package router

import (
	"crypto/rand"
	"sync"

	"github.com/google/uuid"
)

// ids hands out decision ids (random UUID v4s) from a buffer of
// crypto/rand bytes refilled 16 ids at a time: one read per 16 decisions
// instead of one per decision, and no allocation. It is the package's own
// pool, not uuid.EnableRandPool, which would change the setting for the
// whole process of an embedder.
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
			return uuid.New()
		}
		ids.left = len(ids.buf) / 16
	}
	ids.left--
	copy(id[:], ids.buf[ids.left*16:])
	ids.Unlock()
	id[6] = (id[6] & 0x0f) | 0x40 // version 4
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 4122 variant
	return id
}
