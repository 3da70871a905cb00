package trust

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/signature"
)

// SigningKey is a private key hall sign signs with: ECDSA P-256 or
// Ed25519, PKCS#8 PEM, unencrypted (keep the file private; cosign's
// encrypted keys are signed with cosign itself).
type SigningKey struct {
	priv crypto.Signer
	alg  signature.AlgorithmDetails
	hint []byte
}

// GenerateSigningKey makes an ECDSA P-256 key pair (what cosign
// generate-key-pair makes) and returns its PEM private and public keys.
func GenerateSigningKey() (privPEM, pubPEM []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

// LoadSigningKey parses a PKCS#8 (or SEC 1 "EC PRIVATE KEY") PEM key.
func LoadSigningKey(data []byte) (*SigningKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("not a PEM private key (hall sign --generate-key writes one)")
	}
	var key any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q: give an unencrypted PKCS#8 private key (cosign's encrypted keys are used with cosign sign --key)", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	var algo protocommon.PublicKeyDetails
	var signer crypto.Signer
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("an ECDSA key not on P-256")
		}
		algo, signer = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, k
	case ed25519.PrivateKey:
		algo, signer = protocommon.PublicKeyDetails_PKIX_ED25519, k
	default:
		return nil, fmt.Errorf("a %T: only ECDSA P-256 and Ed25519 keys are accepted", key)
	}
	details, err := signature.GetAlgorithmDetails(algo)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &SigningKey{priv: signer, alg: details, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

// The sign.Keypair methods.

func (k *SigningKey) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }
func (k *SigningKey) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}
func (k *SigningKey) GetHint() []byte                { return k.hint }
func (k *SigningKey) GetPublicKey() crypto.PublicKey { return k.priv.Public() }
func (k *SigningKey) GetKeyAlgorithm() string {
	if _, ok := k.priv.(ed25519.PrivateKey); ok {
		return "ED25519"
	}
	return "ECDSA"
}
func (k *SigningKey) GetPublicKeyPem() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
func (k *SigningKey) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := k.alg.GetHashType()
	toSign := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		toSign = h.Sum(nil)
	}
	sig, err := k.priv.Sign(rand.Reader, toSign, hf)
	return sig, toSign, err
}

// SignBlob is a Sigstore bundle of a message signature over data: what
// cosign sign-blob --key --bundle writes (without a transparency log).
// With an Ed25519 key it is a DSSE statement naming data's SHA-256
// instead: sigstore-go (v1.2.2) does not verify a pure Ed25519 message
// signature ("unsupported digest algorithm").
func (k *SigningKey) SignBlob(data []byte) ([]byte, error) {
	if _, ok := k.priv.(ed25519.PrivateKey); ok {
		sum := sha256.Sum256(data)
		return k.SignManifest("blob", hex.EncodeToString(sum[:]))
	}
	pb, err := sign.Bundle(&sign.PlainData{Data: data}, k, sign.BundleOptions{})
	if err != nil {
		return nil, err
	}
	return (&bundle.Bundle{Bundle: pb}).MarshalJSON()
}

// SignManifest is a Sigstore bundle of a DSSE in-toto statement whose
// subject is the manifest digest (hex) of name: what cosign v3 sign --key
// attaches to a registry artifact.
func (k *SigningKey) SignManifest(name, digestHex string) ([]byte, error) {
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": name, "digest": map[string]string{"sha256": digestHex}}},
		"predicateType": "https://sigstore.dev/cosign/sign/v1",
		"predicate":     map[string]any{},
	})
	if err != nil {
		return nil, err
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: stmt, PayloadType: "application/vnd.in-toto+json"}, k, sign.BundleOptions{})
	if err != nil {
		return nil, err
	}
	return (&bundle.Bundle{Bundle: pb}).MarshalJSON()
}
