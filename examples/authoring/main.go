// Command authoring is a complete Hall worker, the one README.md builds from
// `go mod init` to `hall run`. It serves cap.doc.sign: it reads a document
// from a directory its registry record whitelists
// (privilege_envelope.filesystem_reads), signs it with a key it asks the Hall
// for (privilege_envelope.secrets_access), and logs what it did under the
// request's correlation id.
//
// Input: {"path": "/absolute/path/of/the/document"}.
// Output: {"path", "bytes", "sha256", "hmac_sha256", "key", "correlation_id"},
// where hmac_sha256 is the hex HMAC-SHA256 of the document under the secret
// signing_key.
//
// Build (README.md has the whole story):
//
//	hall build --no-input    # GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared, then the record
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves; KeyName is the secret
// it signs with. Both appear in its registry record.
const (
	Capability = "cap.doc.sign"
	KeyName    = "signing_key"
)

// Handlers are registered in init: a -buildmode=c-shared wasip1 module runs
// package initialization but never main.
func init() { sdk.Handle(Capability, sign) }

type request struct {
	Path string `json:"path"`
}

type signature struct {
	Path          string `json:"path"`
	Bytes         int    `json:"bytes"`
	SHA256        string `json:"sha256"`
	HMACSHA256    string `json:"hmac_sha256"`
	Key           string `json:"key"`
	CorrelationID string `json:"correlation_id"`
}

func sign(c *sdk.Call) error {
	var req request
	if err := c.InputJSON(&req); err != nil {
		return err
	}
	if !filepath.IsAbs(req.Path) {
		return fmt.Errorf("signer: path %q must be absolute", req.Path)
	}
	// The sandbox mounts each filesystem_reads directory read-only at its
	// own path; nothing else exists, so any other path fails here.
	doc, err := os.ReadFile(req.Path)
	if err != nil {
		return fmt.Errorf("signer: reading %s: %w (is its directory in privilege_envelope.filesystem_reads?)", req.Path, err)
	}
	// Only secrets the record declares are served; the Hall reads
	// signing_key from HALL_SECRET_SIGNING_KEY by default.
	key, err := c.Secret(KeyName)
	if errors.Is(err, sdk.ErrSecretNotDeclared) {
		return fmt.Errorf("signer: %w (declare it: hall build --secret %s)", err, KeyName)
	}
	if err != nil {
		return fmt.Errorf("signer: secret %s: %w", KeyName, err)
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(doc)
	sum := sha256.Sum256(doc)
	corr := c.Correlation()
	// Log prefixes the message with "[<correlation id>]", which joins the
	// worker's log lines to the Hall's decision and receipt.
	c.Logf(sdk.LevelInfo, "signed %s (%d bytes) for tenant %s", req.Path, len(doc), corr.TenantID)
	return c.OutputJSON(signature{
		Path:          req.Path,
		Bytes:         len(doc),
		SHA256:        hex.EncodeToString(sum[:]),
		HMACSHA256:    hex.EncodeToString(mac.Sum(nil)),
		Key:           KeyName,
		CorrelationID: corr.CorrelationID,
	})
}

// sign is served through its own export; `run` serves any capability
// without an entrypoint of its own (by the wcp.capability_id config).
//
//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport sign
func signExport() int32 { return sdk.Dispatch(Capability) }

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
