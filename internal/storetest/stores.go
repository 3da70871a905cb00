// Package storetest is the contract of host's storage seam (host.Stores):
// tests that any implementation must pass, run against the
// SQLite-and-files default by host's own tests and, with the same calls,
// against any second backend.
//
//	func TestStores(t *testing.T) {
//		storetest.TestStores(t, storetest.Backend{New: ..., Open: ...})
//	}
//
// Each test runs the real implementation: it writes through one open of
// the stores and reads through another open of the same state, as a
// second process or node would.
package storetest

import (
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// Backend is how the contract tests reach an implementation.
type Backend struct {
	// New makes fresh, empty state (a directory, a database) and names it.
	New func(t *testing.T) string
	// Open opens the stores of the state New named. Each call is another
	// open of the same state, as another process would have; the tests
	// close what they open.
	Open func(t *testing.T, state string) *host.Stores
	// TamperEvidence, when set, changes a stored receipt's content behind
	// the store's back, as an attacker with write access to the storage
	// would.
	TamperEvidence func(t *testing.T, state string, receiptID string)
	// TamperArtifact, when set, replaces the stored bytes of the module
	// with digest d behind the store's back.
	TamperArtifact func(t *testing.T, state string, d wcp.Digest)
}

// TestStores runs the contract tests of every part of the seam that the
// backend's stores have.
func TestStores(t *testing.T, b Backend) {
	t.Run("Evidence", func(t *testing.T) { TestEvidence(t, b) })
	t.Run("Tokens", func(t *testing.T) { TestTokens(t, b) })
	t.Run("Artifacts", func(t *testing.T) { TestArtifacts(t, b) })
}

// open opens the stores of state and closes them when t ends.
func open(t *testing.T, b Backend, state string) *host.Stores {
	t.Helper()
	st := b.Open(t, state)
	if st == nil {
		t.Fatal("Backend.Open returned no stores")
	}
	t.Cleanup(func() { st.Close() })
	return st
}
