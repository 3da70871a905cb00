package router

import (
	"bufio"
	"crypto/rand"
	"sync"

	"github.com/google/uuid"
)

// ids draws decision ids (random UUID v4s) from a buffered reader over
// crypto/rand: one read per 16 ids instead of one per decision. It is the
// package's own pool, not uuid.EnableRandPool, which would change the
// setting for the whole process of an embedder.
var ids = struct {
	sync.Mutex
	r *bufio.Reader
}{r: bufio.NewReaderSize(rand.Reader, 16*16)}

func newID() uuid.UUID {
	ids.Lock()
	id, err := uuid.NewRandomFromReader(ids.r)
	ids.Unlock()
	if err != nil {
		return uuid.New()
	}
	return id
}
