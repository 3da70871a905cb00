package oci_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/oci"
	"github.com/wcphall/hall/internal/ocitest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ocitest.StopShared()
	os.Exit(code)
}

// module is a minimal valid module header plus padding: this package does
// not parse Wasm, it moves bytes.
var module = append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{0}, 64)...)

func plain() oci.Options { return oci.Options{PlainHTTP: true, DockerConfig: os.DevNull} }

func TestParseReference(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "oci://127.0.0.1:5000/acme/summarizer:1.0", want: "oci://127.0.0.1:5000/acme/summarizer:1.0"},
		{in: "oci://127.0.0.1:5000/acme/summarizer@" + d, want: "oci://127.0.0.1:5000/acme/summarizer@" + d},
		{in: "oci://127.0.0.1:5000/acme/summarizer:1.0@" + d, want: "oci://127.0.0.1:5000/acme/summarizer:1.0@" + d},
		{in: "127.0.0.1:5000/acme/summarizer:1.0", err: "starts with oci://"},
		{in: "oci://127.0.0.1:5000/acme/summarizer", err: "names no tag or digest"},
		{in: "oci://127.0.0.1:5000/acme/summarizer@sha256:xyz", err: "sha256:<64 hex digits>"},
		{in: "oci://127.0.0.1:5000/Acme/summarizer:1", err: "OCI_REFERENCE_INVALID"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := oci.ParseReference(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || r.String() != tc.want {
				t.Fatalf("got %q, %v; want %q", r.String(), err, tc.want)
			}
		})
	}
}

// TestPlainHTTPOnlyForLoopback: credentials and modules never cross the
// network in the clear.
func TestPlainHTTPOnlyForLoopback(t *testing.T) {
	for host, ok := range map[string]bool{"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true, "registry.example:5000": false, "10.0.0.1": false} {
		ref, err := oci.ParseReference("oci://" + host + "/a/b:1")
		if err != nil {
			t.Fatal(err)
		}
		_, err = oci.Repository(ref, plain())
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want allowed=%v", host, err, ok)
		}
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	reg := ocitest.SharedRegistry(t)
	ctx := context.Background()
	ref, _ := oci.ParseReference("oci://" + reg.Host + "/" + ocitest.RepoName(t) + ":1.0")
	record := []byte(`{"worker_id":"org.acme.w"}`)
	desc, err := oci.Push(ctx, ref, module, record, plain())
	if err != nil {
		t.Fatal(err)
	}
	again, err := oci.Push(ctx, ref, module, record, plain())
	if err != nil || again.Digest != desc.Digest {
		t.Fatalf("pushing the same bytes again: %v, %s != %s", err, again.Digest, desc.Digest)
	}
	art, err := oci.Pull(ctx, ref, plain())
	if err != nil {
		t.Fatal(err)
	}
	if art.Ref.Digest != desc.Digest.String() || !bytes.Equal(art.Module, module) || !bytes.Equal(art.Record, record) {
		t.Fatalf("pulled %s %d bytes record %q", art.Ref, len(art.Module), art.Record)
	}
	byDigest, _ := oci.ParseReference("oci://" + reg.Host + "/" + ocitest.RepoName(t) + "@" + desc.Digest.String())
	if art, err = oci.Pull(ctx, byDigest, plain()); err != nil || !bytes.Equal(art.Module, module) {
		t.Fatalf("by digest: %v", err)
	}
}

// tamperingProxy forwards to the registry but answers every blob request
// for the digest victim with other bytes, or declares a size it never
// sends.
func tamperingProxy(t *testing.T, host string, rewrite func(w http.ResponseWriter, r *http.Request) bool) string {
	u, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rewrite(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestPullRefusesALayerThatDoesNotMatchItsDigest: a registry that serves
// other bytes for the module layer is refused, whatever it claims.
func TestPullRefusesALayerThatDoesNotMatchItsDigest(t *testing.T) {
	reg := ocitest.SharedRegistry(t)
	ctx := context.Background()
	repo := ocitest.RepoName(t)
	ref, _ := oci.ParseReference("oci://" + reg.Host + "/" + repo + ":1.0")
	if _, err := oci.Push(ctx, ref, module, nil, plain()); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(module)
	victim := "/blobs/sha256:" + hex.EncodeToString(sum[:])
	evil := bytes.Clone(module)
	evil[len(evil)-1] = 1
	proxy := tamperingProxy(t, reg.Host, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, victim) {
			return false
		}
		w.Header().Set("Content-Length", "72")
		_, _ = w.Write(evil)
		return true
	})
	pref, _ := oci.ParseReference("oci://" + proxy + "/" + repo + ":1.0")
	_, err := oci.Pull(ctx, pref, plain())
	var oe *oci.Error
	if !errors.As(err, &oe) || oe.Kind != oci.CodeArtifactRefused || !strings.Contains(err.Error(), "does not match its descriptor") {
		t.Fatalf("err = %v, want OCI_ARTIFACT_REFUSED naming the mismatch", err)
	}
}

// TestFetchBoundedRefusesAHugeLayerWithoutReadingIt: a descriptor that
// declares 5 GB is refused before any request; content longer than its
// descriptor stops at the descriptor's size + 1.
func TestFetchBoundedRefusesAHugeLayerWithoutReadingIt(t *testing.T) {
	f := &countingFetcher{}
	desc := oci.Descriptor(oci.MediaTypeWasm, 5<<30, "sha256:"+strings.Repeat("0", 64))
	_, err := oci.FetchBounded(context.Background(), f, desc, oci.DefaultMaxModuleBytes, "module layer")
	if err == nil || !strings.Contains(err.Error(), "over the limit") || f.calls != 0 {
		t.Fatalf("err = %v after %d fetches; want a refusal before any fetch", err, f.calls)
	}
	// A layer that declares 72 bytes but streams without end (like
	// /dev/zero) is read 73 bytes far, then refused.
	desc = oci.Descriptor(oci.MediaTypeWasm, 72, "sha256:"+strings.Repeat("0", 64))
	_, err = oci.FetchBounded(context.Background(), f, desc, oci.DefaultMaxModuleBytes, "module layer")
	if err == nil || f.read > 73+32*1024 {
		t.Fatalf("err = %v after reading %d bytes of an endless layer", err, f.read)
	}
}

type countingFetcher struct {
	calls int
	read  int64
}

func (c *countingFetcher) Fetch(context.Context, oci.Desc) (io.ReadCloser, error) {
	c.calls++
	return io.NopCloser(&zeros{n: &c.read}), nil
}

type zeros struct{ n *int64 }

func (z *zeros) Read(p []byte) (int, error) {
	clear(p)
	*z.n += int64(len(p))
	return len(p), nil
}
