package artifact

import (
	"errors"
	"os"
	"testing"
)

// TestGetAfterVerifyDetectsTampering: the bytes Verify read are handed to
// the next Get only while the file is unchanged; a write in between is
// caught by that Get.
func TestGetAfterVerifyDetectsTampering(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	module := []byte("\x00asm\x01\x00\x00\x00 original bytes")
	d, _ := s.Put(module)
	if v, err := s.Verify(d); err != nil || v != d {
		t.Fatal(v, err)
	}
	if got, err := s.Get(d); err != nil || string(got) != string(module) {
		t.Fatalf("Get after Verify: %q %v", got, err)
	}

	// A fresh Store (a new process) reads and hashes in Verify.
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Verify(d); err != nil || v != d {
		t.Fatal(v, err)
	}
	path := s.Path(d)
	chmodNewCtime(t, path, 0o600)
	if err := os.WriteFile(path, []byte("\x00asm\x01\x00\x00\x00 ORIGINAL BYTES"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(d)
	var te *TamperedError
	if !errors.As(err, &te) || te.Want != d {
		t.Fatalf("Get of a file written after Verify: %v, want *TamperedError", err)
	}
}
