// Package oci moves Wasm workers to and from OCI registries with
// oras-go: the artifact layout the Wasm ecosystem uses (CNCF TAG Runtime:
// config application/vnd.wasm.config.v0+json, one layer application/wasm),
// references of the form oci://HOST[:PORT]/REPO:TAG or …@sha256:<hex>,
// credentials from the Docker config file and its credential helpers, and
// reads bounded before a byte is fetched.
//
// It knows nothing of records, seals or trust: host decides what a
// fetched module means.
package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/wcphall/hall/host/wcp"
)

// Media types of a Wasm worker artifact.
const (
	// MediaTypeWasmConfig is the config blob of a Wasm OCI artifact.
	MediaTypeWasmConfig = "application/vnd.wasm.config.v0+json"
	// MediaTypeWasm is the layer holding the module.
	MediaTypeWasm = "application/wasm"
	// MediaTypeRecord is the optional second layer holding the registry
	// record (WCP §3) when it travels beside the module rather than in
	// its wcp.record custom section.
	MediaTypeRecord = "application/vnd.wcp.record.v1+json"
	// Scheme prefixes every reference.
	Scheme = "oci://"
)

// Bounds of what a fetch reads. A descriptor that declares more is
// refused before its content is requested; content that is longer than,
// or differs from, what its descriptor declares is refused as it is read.
const (
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxModuleBytes   = 64 << 20
	DefaultMaxRecordBytes   = 1 << 20
)

// Reference is a parsed oci:// reference.
type Reference struct {
	// Registry is HOST[:PORT].
	Registry string
	// Repository is the repository path.
	Repository string
	// Tag is the tag ("" when the reference is by digest only).
	Tag string
	// Digest is "sha256:<hex>" ("" when the reference is by tag only).
	Digest string
}

// Error is a refusal or failure of this package with a stable code.
type Error struct {
	// Kind is OCI_REFERENCE_INVALID, OCI_FETCH_FAILED or OCI_ARTIFACT_REFUSED.
	Kind string
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Kind + ": " + e.Msg + ": " + e.Err.Error()
	}
	return e.Kind + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Codes of Error.
const (
	CodeReferenceInvalid = string(wcp.CodeOCIReferenceInvalid)
	CodeFetchFailed      = string(wcp.CodeOCIFetchFailed)
	CodeArtifactRefused  = string(wcp.CodeOCIArtifactRefused)
)

func refused(format string, a ...any) error {
	return &Error{Kind: CodeArtifactRefused, Msg: fmt.Sprintf(format, a...)}
}

// IsReference reports whether s is written as an oci:// reference.
func IsReference(s string) bool { return strings.HasPrefix(s, Scheme) }

// ParseReference parses oci://HOST[:PORT]/REPO[:TAG][@sha256:<hex>]. A
// reference names a tag, a digest, or both (the digest wins).
func ParseReference(s string) (Reference, error) {
	if !IsReference(s) {
		return Reference{}, &Error{Kind: CodeReferenceInvalid, Msg: fmt.Sprintf("%q: a registry reference starts with %s (oci://HOST[:PORT]/REPO:TAG or …@sha256:<hex>)", s, Scheme)}
	}
	raw := strings.TrimPrefix(s, Scheme)
	dgst := ""
	if i := strings.Index(raw, "@"); i >= 0 {
		raw, dgst = raw[:i], raw[i+1:]
	}
	ref, err := registry.ParseReference(raw)
	if err != nil {
		return Reference{}, &Error{Kind: CodeReferenceInvalid, Msg: fmt.Sprintf("%q: write oci://HOST[:PORT]/REPO:TAG or …@sha256:<hex>", s), Err: err}
	}
	out := Reference{Registry: ref.Registry, Repository: ref.Repository, Tag: ref.Reference}
	if dgst != "" {
		d, err := digest.Parse(dgst)
		if err != nil || d.Algorithm() != digest.SHA256 {
			return Reference{}, &Error{Kind: CodeReferenceInvalid, Msg: fmt.Sprintf("%q: the digest must be sha256:<64 hex digits>", s)}
		}
		out.Digest = d.String()
	}
	if out.Tag == "" && out.Digest == "" {
		return Reference{}, &Error{Kind: CodeReferenceInvalid, Msg: fmt.Sprintf("%q names no tag or digest: add :TAG or @sha256:<hex>", s)}
	}
	return out, nil
}

// String is the reference as oci://… text.
func (r Reference) String() string {
	s := Scheme + r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// ref is what remote.Repository resolves: the digest when known.
func (r Reference) ref() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// IsLoopback reports whether the registry host is a loopback address
// (127.0.0.0/8, ::1 or localhost): the only hosts --plain-http may reach.
func (r Reference) IsLoopback() bool {
	host := r.Registry
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Options govern one registry client.
type Options struct {
	// PlainHTTP talks HTTP instead of HTTPS; refused unless the registry
	// is a loopback address (credentials and modules would cross the
	// network in the clear).
	PlainHTTP bool
	// DockerConfig is the Docker config file whose credentials (and
	// credential helpers) are used; "" is Docker's own default
	// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json).
	DockerConfig string
	// MaxManifestBytes, MaxModuleBytes: the bounds of a fetch (zero: the
	// defaults).
	MaxManifestBytes, MaxModuleBytes int64
	// Client is the HTTP client under the registry's auth (nil: one with
	// a 60 s timeout per request).
	Client *http.Client
	// UserAgent is sent with every request ("" : "hall").
	UserAgent string
}

func (o Options) maxManifest() int64 {
	if o.MaxManifestBytes > 0 {
		return o.MaxManifestBytes
	}
	return DefaultMaxManifestBytes
}

func (o Options) maxModule() int64 {
	if o.MaxModuleBytes > 0 {
		return o.MaxModuleBytes
	}
	return DefaultMaxModuleBytes
}

// Repository opens the repository of ref with o's transport and
// credentials.
func Repository(ref Reference, o Options) (*remote.Repository, error) {
	if o.PlainHTTP && !ref.IsLoopback() {
		return nil, &Error{Kind: CodeReferenceInvalid, Msg: fmt.Sprintf("--plain-http is for a registry on this machine (127.0.0.1, ::1, localhost); %s is not: use HTTPS", ref.Registry)}
	}
	repo, err := remote.NewRepository(ref.Registry + "/" + ref.Repository)
	if err != nil {
		return nil, &Error{Kind: CodeReferenceInvalid, Msg: ref.String(), Err: err}
	}
	var store credentials.Store
	if o.DockerConfig != "" {
		store, err = credentials.NewStore(o.DockerConfig, credentials.StoreOptions{})
	} else {
		store, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
	}
	if err != nil {
		return nil, &Error{Kind: CodeFetchFailed, Msg: "reading the Docker config file for registry credentials", Err: err}
	}
	hc := o.Client
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "hall"
	}
	c := &auth.Client{Client: hc, Cache: auth.NewCache(), Credential: credentials.Credential(store)}
	c.SetUserAgent(ua)
	repo.Client = c
	repo.PlainHTTP = o.PlainHTTP
	repo.MaxMetadataBytes = o.maxManifest()
	return repo, nil
}

// wasmConfig is the config blob of the Wasm OCI artifact layout.
type wasmConfig struct {
	Created      string   `json:"created,omitempty"`
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	LayerDigests []string `json:"layerDigests"`
}

// Push stores module (and record, when not nil, as a second layer) as a
// Wasm OCI artifact under ref's tag and returns the manifest's
// descriptor. The manifest is deterministic for the same bytes (no
// creation time), so pushing the same module twice yields one digest.
func Push(ctx context.Context, ref Reference, module, record []byte, o Options) (ocispec.Descriptor, error) {
	if ref.Tag == "" {
		return ocispec.Descriptor{}, &Error{Kind: CodeReferenceInvalid, Msg: ref.String() + ": push needs a tag (oci://HOST/REPO:TAG)"}
	}
	repo, err := Repository(ref, o)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layers := []ocispec.Descriptor{content.NewDescriptorFromBytes(MediaTypeWasm, module)}
	blobs := [][]byte{module}
	if record != nil {
		layers = append(layers, content.NewDescriptorFromBytes(MediaTypeRecord, record))
		blobs = append(blobs, record)
	}
	cfg := wasmConfig{Architecture: "wasm", OS: "wasip1"}
	for _, l := range layers {
		cfg.LayerDigests = append(cfg.LayerDigests, l.Digest.String())
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfgDesc := content.NewDescriptorFromBytes(MediaTypeWasmConfig, cfgBytes)
	for i, d := range append([]ocispec.Descriptor{cfgDesc}, layers...) {
		data := cfgBytes
		if i > 0 {
			data = blobs[i-1]
		}
		if err := pushBlob(ctx, repo, d, data); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	man := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: layers}
	manBytes, err := json.Marshal(man)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	manDesc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, manBytes)
	if err := repo.PushReference(ctx, manDesc, strings.NewReader(string(manBytes)), ref.Tag); err != nil {
		return ocispec.Descriptor{}, &Error{Kind: CodeFetchFailed, Msg: "pushing the manifest to " + ref.String(), Err: err}
	}
	return manDesc, nil
}

func pushBlob(ctx context.Context, repo *remote.Repository, d ocispec.Descriptor, data []byte) error {
	ok, err := repo.Exists(ctx, d)
	if err == nil && ok {
		return nil
	}
	if err := repo.Push(ctx, d, strings.NewReader(string(data))); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return &Error{Kind: CodeFetchFailed, Msg: "pushing blob " + d.Digest.String(), Err: err}
	}
	return nil
}

// Artifact is a Wasm worker fetched from a registry.
type Artifact struct {
	// Ref is the reference asked for, with Digest set to the manifest's
	// digest it resolved to (the tag kept for messages).
	Ref Reference
	// Manifest is the manifest's descriptor.
	Manifest ocispec.Descriptor
	// Module is the application/wasm layer's bytes, verified against its
	// descriptor's digest and size.
	Module []byte
	// Record is the application/vnd.wcp.record.v1+json layer (nil: none).
	Record []byte
}

// Resolve resolves ref to its manifest's descriptor once (a tag is read
// once; the digest returned is what must be used afterwards).
func Resolve(ctx context.Context, ref Reference, o Options) (ocispec.Descriptor, *remote.Repository, error) {
	repo, err := Repository(ref, o)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	desc, err := repo.Resolve(ctx, ref.ref())
	if err != nil {
		return ocispec.Descriptor{}, nil, &Error{Kind: CodeFetchFailed, Msg: "resolving " + ref.String(), Err: err}
	}
	if ref.Digest != "" && desc.Digest.String() != ref.Digest {
		return ocispec.Descriptor{}, nil, refused("%s: the registry answered manifest %s for digest %s", ref, desc.Digest, ref.Digest)
	}
	return desc, repo, nil
}

// Pull resolves ref once and fetches the Wasm artifact it names. It
// refuses, before reading their content, a manifest or layer whose
// descriptor declares more than the bounds, and refuses content that
// does not match its descriptor's digest and size.
func Pull(ctx context.Context, ref Reference, o Options) (*Artifact, error) {
	desc, repo, err := Resolve(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	return PullResolved(ctx, repo, ref, desc, o)
}

// PullResolved fetches the Wasm artifact of desc, the manifest ref
// resolved to (Resolve), with Pull's bounds and checks.
func PullResolved(ctx context.Context, repo *remote.Repository, ref Reference, desc ocispec.Descriptor, o Options) (*Artifact, error) {
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, refused("%s is a %q, not an OCI image manifest of a Wasm artifact", ref, desc.MediaType)
	}
	manBytes, err := FetchBounded(ctx, repo, desc, o.maxManifest(), "manifest")
	if err != nil {
		return nil, err
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(manBytes, &man); err != nil {
		return nil, refused("%s: the manifest is not JSON: %v", ref, err)
	}
	if man.Config.MediaType != MediaTypeWasmConfig {
		return nil, refused("%s: the config is %q, not %s: not a Wasm artifact (push it with hall push)", ref, man.Config.MediaType, MediaTypeWasmConfig)
	}
	pinned := ref
	pinned.Digest = desc.Digest.String()
	art := &Artifact{Ref: pinned, Manifest: desc}
	var wasmLayer, recordLayer *ocispec.Descriptor
	for i := range man.Layers {
		l := &man.Layers[i]
		switch l.MediaType {
		case MediaTypeWasm:
			if wasmLayer != nil {
				return nil, refused("%s: the manifest has more than one %s layer", ref, MediaTypeWasm)
			}
			wasmLayer = l
		case MediaTypeRecord:
			if recordLayer != nil {
				return nil, refused("%s: the manifest has more than one %s layer", ref, MediaTypeRecord)
			}
			recordLayer = l
		}
	}
	if wasmLayer == nil {
		return nil, refused("%s: the manifest has no %s layer", ref, MediaTypeWasm)
	}
	if art.Module, err = FetchBounded(ctx, repo, *wasmLayer, o.maxModule(), "module layer"); err != nil {
		return nil, err
	}
	if recordLayer != nil {
		if art.Record, err = FetchBounded(ctx, repo, *recordLayer, DefaultMaxRecordBytes, "record layer"); err != nil {
			return nil, err
		}
	}
	return art, nil
}

// Fetcher is what FetchBounded reads from (a remote.Repository).
type Fetcher interface {
	Fetch(ctx context.Context, target ocispec.Descriptor) (io.ReadCloser, error)
}

// FetchBounded reads the content of desc, refusing without a request a
// descriptor that declares more than max bytes (or a negative size), and
// refusing content longer than, shorter than or different from what desc
// declares. what names the content in messages.
func FetchBounded(ctx context.Context, f Fetcher, desc ocispec.Descriptor, max int64, what string) ([]byte, error) {
	if desc.Size < 0 || desc.Size > max {
		return nil, refused("the %s %s declares %d bytes, over the limit of %d: it was not read", what, desc.Digest, desc.Size, max)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, refused("the %s's digest %q: %v", what, desc.Digest, err)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, &Error{Kind: CodeFetchFailed, Msg: "fetching the " + what + " " + desc.Digest.String(), Err: err}
	}
	defer rc.Close()
	data, err := content.ReadAll(io.LimitReader(rc, desc.Size+1), desc)
	if err != nil {
		return nil, refused("the %s does not match its descriptor (%s, %d bytes): %v", what, desc.Digest, desc.Size, err)
	}
	return data, nil
}

// Desc is an OCI content descriptor.
type Desc = ocispec.Descriptor

// Descriptor is a descriptor of mediaType declaring size bytes of digest d.
func Descriptor(mediaType string, size int64, d string) Desc {
	return Desc{MediaType: mediaType, Size: size, Digest: digest.Digest(d)}
}

// Code is the error's code (OCI_REFERENCE_INVALID, OCI_FETCH_FAILED or
// OCI_ARTIFACT_REFUSED).
func (e *Error) Code() wcp.Code { return wcp.Code(e.Kind) }
