package artifact

import (
	"crypto/sha256"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

func TestPutGetVerify(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	module := []byte("\x00asm\x01\x00\x00\x00 pretend module")
	d, err := s.Put(module)
	if err != nil {
		t.Fatal(err)
	}
	if d != wcp.Digest(sha256.Sum256(module)) {
		t.Fatalf("digest %s", d)
	}
	if again, err := s.Put(module); err != nil || again != d {
		t.Fatalf("second Put: %s %v", again, err)
	}
	got, err := s.Get(d)
	if err != nil || string(got) != string(module) {
		t.Fatalf("Get: %q %v", got, err)
	}
	if v, err := s.Verify(d); err != nil || v != d {
		t.Fatalf("Verify: %s %v", v, err)
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("stored file mode %v (%v), want 0400", fi.Mode(), err)
	}
}

func TestTamperingDetectedEvenWithSameSizeAndMtime(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	module := []byte("\x00asm\x01\x00\x00\x00 original bytes")
	d, _ := s.Put(module)
	if v, err := s.Verify(d); err != nil || v != d { // now cached as verified
		t.Fatal(v, err)
	}
	path := s.Path(d)
	fi, _ := os.Stat(path)
	chmodNewCtime(t, path, 0o600)
	tampered := []byte("\x00asm\x01\x00\x00\x00 ORIGINAL BYTES")
	if err := os.WriteFile(path, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	// Put the modification time back: only the change time betrays the write.
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	v, err := s.Verify(d)
	if err != nil || v == d || v != wcp.Digest(sha256.Sum256(tampered)) {
		t.Fatalf("Verify after tampering = %s, %v; want the tampered digest", v, err)
	}
	_, err = s.Get(d)
	var te *TamperedError
	if !errors.As(err, &te) || te.Want != d {
		t.Fatalf("Get after tampering: %v", err)
	}
}

func TestMissing(t *testing.T) {
	s, _ := Open(t.TempDir())
	var d wcp.Digest
	if _, err := s.Get(d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v", err)
	}
	if _, err := s.Verify(d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Verify: %v", err)
	}
}

// chmodNewCtime sets path's mode until its change time differs from the
// one it had: the file system stamps with a coarse clock (a jiffy, up to
// 10 ms, on some kernels), so a write right after a Verify can carry the
// change time Verify saw. It polls that clock instead of sleeping a
// guessed granularity.
func chmodNewCtime(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	ctime := func() (int64, bool) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		_, _, c, ok := changeTime(fi)
		return c, ok
	}
	was, _ := ctime()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if now, ok := ctime(); now != was || !ok { // !ok: the store hashes on every read
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the change time did not move in 10 s", path)
		}
		time.Sleep(time.Millisecond) // polling the file system's clock
	}
}
