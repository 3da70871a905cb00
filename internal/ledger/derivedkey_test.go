package ledger

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestDerivedKey: a derived key is 32 bytes, the same for the same key
// and purpose across opens, different per purpose and per signing key,
// and nil without a signing key.
func TestDerivedKey(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.DerivedKey("hall compiled-form cache v1"), s.DerivedKey("another purpose")
	s.Close()
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Fatalf("keys %x and %x: want 32 bytes each, different per purpose", a, b)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	again := s.DerivedKey("hall compiled-form cache v1")
	s.Close()
	if !bytes.Equal(a, again) {
		t.Fatal("the derived key changed across opens of the same key")
	}
	other, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if bytes.Equal(a, other.DerivedKey("hall compiled-form cache v1")) {
		t.Fatal("two signing keys derived the same key")
	}
	ro, err := Open(dir, ReadOnly(), WithKeyFile(filepath.Join(t.TempDir(), "absent.pem")))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if k := ro.DerivedKey("hall compiled-form cache v1"); k != nil {
		t.Fatalf("a ledger without a signing key derived %x", k)
	}
}
