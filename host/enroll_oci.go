package host

import (
	"context"
	"fmt"

	"github.com/wcphall/hall/internal/oci"
)

// RegistryOptions say how the Hall reaches an OCI registry.
type RegistryOptions struct {
	// PlainHTTP talks HTTP, for a registry on loopback only (127.0.0.1,
	// ::1, localhost); refused for any other host.
	PlainHTTP bool
	// DockerConfig is the Docker config file whose credentials and
	// credential helpers are used ("": Docker's default location).
	DockerConfig string
}

func (o RegistryOptions) oci() oci.Options {
	return oci.Options{PlainHTTP: o.PlainHTTP, DockerConfig: o.DockerConfig}
}

// EnrollReferenceRequest enrolls a worker from an OCI registry.
type EnrollReferenceRequest struct {
	// Reference is oci://HOST[:PORT]/REPO:TAG or …@sha256:<hex>.
	Reference string
	Registry  RegistryOptions
	// AddRule and Actor are as in EnrollRequest.
	AddRule bool
	Actor   string
}

// EnrollReference resolves a registry reference to its manifest digest
// once, fetches the Wasm artifact of that digest (bounded, verified
// against its digests), finds the cosign signatures of that digest in the
// registry, and enrolls the module as Enroll does: the trust policy is
// applied to the signatures, and the digest-pinned reference, the signer
// and the verdict are recorded (a provenance change) before the
// enrollment. A tag moved afterwards changes nothing: the Hall holds the
// bytes of the digest it resolved.
func (h *Hall) EnrollReference(ctx context.Context, req EnrollReferenceRequest) (*EnrollResult, error) {
	if err := h.checkAdmin(ctx, actor(req.Actor)); err != nil {
		return nil, err
	}
	ref, err := oci.ParseReference(req.Reference)
	if err != nil {
		return nil, err
	}
	o := req.Registry.oci()
	desc, repo, err := oci.Resolve(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	art, err := oci.PullResolved(ctx, repo, ref, desc, o)
	if err != nil {
		return nil, err
	}
	sigs, problems, err := oci.Signatures(ctx, repo, desc, o)
	if err != nil {
		return nil, err
	}
	er := EnrollRequest{
		Module: art.Module, Record: art.Record, AddRule: req.AddRule, Actor: req.Actor,
		Signed: &Signed{Source: art.Ref.String(), Subject: desc.Digest.String(), Signatures: sigs, Problems: problems},
	}
	if art.Record != nil {
		er.RecordSource = fmt.Sprintf("%s (%s layer)", art.Ref, oci.MediaTypeRecord)
	}
	return h.Enroll(ctx, er)
}
