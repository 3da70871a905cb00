package oci

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/wcphall/hall/internal/trust"
)

// Media types of the signatures cosign attaches to an artifact.
const (
	// MediaTypeBundle is a Sigstore bundle (cosign v3 sign, hall sign):
	// the artifact type of a referrer whose one layer is the bundle.
	MediaTypeBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// MediaTypeSimpleSigning is a layer of cosign's older
	// sha256-<hex>.sig manifest: a simple-signing payload, its signature
	// in the AnnotationCosignSignature annotation (base64).
	MediaTypeSimpleSigning    = "application/vnd.dev.cosign.simplesigning.v1+json"
	AnnotationCosignSignature = "dev.cosignproject.cosign/signature"
)

// maxReferrers bounds the referrers examined for one artifact.
const maxReferrers = 32

// Signatures returns the cosign signatures of subject (a manifest of repo)
// that the registry holds: Sigstore bundles among its referrers (the
// referrers API, or the sha256-<hex> tag index cosign writes where the
// registry has none) and the older sha256-<hex>.sig layout. Every read is
// bounded: a bundle or payload over trust.MaxSignatureBytes is refused
// unread (recorded as a problem, not returned). Signatures that cannot be
// read are reported in problems; an error is returned only when the
// registry cannot be asked at all.
func Signatures(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, o Options) (sigs []trust.Signature, problems []string, err error) {
	var refs []ocispec.Descriptor
	err = repo.Referrers(ctx, subject, "", func(page []ocispec.Descriptor) error {
		for _, d := range page {
			if len(refs) >= maxReferrers {
				return errStop
			}
			refs = append(refs, d)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) && !errors.Is(err, errdef.ErrNotFound) {
		problems = append(problems, "listing referrers: "+err.Error())
	}
	for _, d := range refs {
		if d.ArtifactType != MediaTypeBundle {
			continue
		}
		b, err := bundleOf(ctx, repo, d, o)
		if err != nil {
			problems = append(problems, fmt.Sprintf("referrer %s: %v", d.Digest, err))
			continue
		}
		sigs = append(sigs, trust.Signature{Format: trust.FormatBundle, Bundle: b, Source: "referrer " + d.Digest.String()})
	}
	legacy, lp := simpleSignatures(ctx, repo, subject, o)
	return append(sigs, legacy...), append(problems, lp...), nil
}

var errStop = errors.New("stop")

func bundleOf(ctx context.Context, repo *remote.Repository, d ocispec.Descriptor, o Options) (json.RawMessage, error) {
	manBytes, err := FetchBounded(ctx, repo, d, o.maxManifest(), "signature manifest")
	if err != nil {
		return nil, err
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(manBytes, &man); err != nil {
		return nil, fmt.Errorf("the signature manifest is not JSON: %v", err)
	}
	for _, l := range man.Layers {
		if l.MediaType == MediaTypeBundle {
			return FetchBounded(ctx, repo, l, trust.MaxSignatureBytes, "signature bundle")
		}
	}
	return nil, fmt.Errorf("the signature manifest has no %s layer", MediaTypeBundle)
}

// simpleSignatures reads cosign's sha256-<hex>.sig manifest, if any.
func simpleSignatures(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, o Options) ([]trust.Signature, []string) {
	tag := strings.Replace(subject.Digest.String(), ":", "-", 1) + ".sig"
	desc, err := repo.Resolve(ctx, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, []string{"resolving " + tag + ": " + err.Error()}
	}
	manBytes, err := FetchBounded(ctx, repo, desc, o.maxManifest(), "signature manifest")
	if err != nil {
		return nil, []string{tag + ": " + err.Error()}
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(manBytes, &man); err != nil {
		return nil, []string{tag + ": the signature manifest is not JSON"}
	}
	var sigs []trust.Signature
	var problems []string
	for i, l := range man.Layers {
		if i >= maxReferrers {
			break
		}
		if l.MediaType != MediaTypeSimpleSigning {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[AnnotationCosignSignature])
		if err != nil || len(sig) == 0 {
			problems = append(problems, fmt.Sprintf("%s layer %d: no readable %s annotation", tag, i, AnnotationCosignSignature))
			continue
		}
		payload, err := FetchBounded(ctx, repo, l, trust.MaxSignatureBytes, "signature payload")
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s layer %d: %v", tag, i, err))
			continue
		}
		sigs = append(sigs, trust.Signature{Format: trust.FormatSimpleSigning, Payload: payload, Sig: sig, Source: tag})
	}
	return sigs, problems
}

// AttachBundle stores bundle (a Sigstore bundle of subject) as a referrer
// of subject in repo, the way cosign v3 does: a manifest of artifact type
// MediaTypeBundle whose one layer is the bundle and whose subject is the
// signed manifest. Where the registry has no referrers API, oras-go keeps
// the sha256-<hex> tag index cosign uses.
func AttachBundle(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, bundle []byte) (ocispec.Descriptor, error) {
	layer := content.NewDescriptorFromBytes(MediaTypeBundle, bundle)
	if err := pushBlob(ctx, repo, layer, bundle); err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, MediaTypeBundle, oras.PackManifestOptions{
		Subject: &subject, Layers: []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "1970-01-01T00:00:00Z"},
	})
	if err != nil {
		return ocispec.Descriptor{}, &Error{Kind: CodeFetchFailed, Msg: "attaching the signature to " + subject.Digest.String(), Err: err}
	}
	return desc, nil
}
