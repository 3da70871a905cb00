package ledger

import (
	"runtime"
	"sync"
)

// verifyChunk is how many rows Verify reads before checking them: large
// enough that handing a chunk to the checkers costs nothing next to the
// signatures in it, small enough that memory stays flat in the ledger's
// size.
const verifyChunk = 512

// checkInOrder reads rows with read (in its own goroutine: a sql.Rows
// belongs to one goroutine), runs check on every row on all cores, and
// then calls link on each row in the order read. check must depend on its
// row alone (hash, signature, decoding: most of the cost); finish, when
// not nil, then runs on each run of rows one core checked (work shared
// among rows: one field inversion for all their signatures); link carries
// what depends on the rows before (sequence numbers, hash links), so the
// result is what a one-by-one walk gives. At most three chunks are held
// at a time.
func checkInOrder[T any](read func(emit func(T) bool) error, check func(*T), finish func([]T), link func(*T)) error {
	chunks := make(chan []T, 1)
	stop := make(chan struct{})
	var readErr error
	go func() {
		defer close(chunks)
		buf := make([]T, 0, verifyChunk)
		send := func() bool {
			select {
			case chunks <- buf:
				buf = make([]T, 0, verifyChunk)
				return true
			case <-stop:
				return false
			}
		}
		readErr = read(func(row T) bool {
			buf = append(buf, row)
			return len(buf) < verifyChunk || send()
		})
		if len(buf) > 0 {
			send()
		}
	}()
	defer func() {
		close(stop)
		for range chunks {
		}
	}()
	workers := runtime.GOMAXPROCS(0)
	for chunk := range chunks {
		if workers == 1 || len(chunk) < 2*workers {
			for i := range chunk {
				check(&chunk[i])
			}
			if finish != nil {
				finish(chunk)
			}
		} else {
			var wg sync.WaitGroup
			per := (len(chunk) + workers - 1) / workers
			for lo := 0; lo < len(chunk); lo += per {
				hi := min(lo+per, len(chunk))
				wg.Add(1)
				go func(part []T) {
					defer wg.Done()
					for i := range part {
						check(&part[i])
					}
					if finish != nil {
						finish(part)
					}
				}(chunk[lo:hi])
			}
			wg.Wait()
		}
		for i := range chunk {
			link(&chunk[i])
		}
	}
	// The reader has finished: chunks was closed.
	return readErr
}
