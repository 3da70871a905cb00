package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"bytes"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// TestArtifacts checks an ArtifactStore: Put returns the bytes' digest and
// another open Gets them back, Verify reports the digest, an unknown
// digest is ErrArtifactNotFound, and bytes changed behind the store's back
// are reported (Get: *ArtifactTamperedError; Verify: the other digest).
func TestArtifacts(t *testing.T, b Backend) {
	ctx := context.Background()
	state := b.New(t)
	a, c := open(t, b, state).Artifacts, open(t, b, state).Artifacts
	if a == nil || c == nil {
		t.Fatal("Stores.Artifacts is nil")
	}
	module := []byte("\x00asm\x01\x00\x00\x00 contract module")
	want := wcp.Digest(sha256.Sum256(module))
	d, err := a.Put(ctx, module)
	if err != nil || d != want {
		t.Fatalf("Put = %s, %v; want %s", d, err, want)
	}
	if d2, err := a.Put(ctx, module); err != nil || d2 != want {
		t.Fatalf("Put of the same bytes again = %s, %v", d2, err)
	}
	got, err := c.Get(ctx, d)
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("Get through another open = %q, %v", got, err)
	}
	if v, err := c.Verify(ctx, d); err != nil || v != d {
		t.Fatalf("Verify = %s, %v; want %s", v, err, d)
	}
	unknown := wcp.Digest(sha256.Sum256([]byte("never stored")))
	if _, err := c.Get(ctx, unknown); !errors.Is(err, host.ErrArtifactNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrArtifactNotFound", err)
	}
	if _, err := c.Verify(ctx, unknown); !errors.Is(err, host.ErrArtifactNotFound) {
		t.Fatalf("Verify(unknown) = %v, want ErrArtifactNotFound", err)
	}
	if b.TamperArtifact == nil {
		return
	}
	b.TamperArtifact(t, state, d)
	fresh := open(t, b, state).Artifacts
	for name, s := range map[string]host.ArtifactStore{"the open that read it": c, "a fresh open": fresh} {
		if v, err := s.Verify(ctx, d); err != nil || v == d {
			t.Errorf("%s: Verify of tampered bytes = %s, %v; want another digest", name, v, err)
		}
		var te *host.ArtifactTamperedError
		if _, err := s.Get(ctx, d); !errors.As(err, &te) {
			t.Errorf("%s: Get of tampered bytes = %v, want *ArtifactTamperedError", name, err)
		}
	}
}
