package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/oci"
	"github.com/wcphall/hall/internal/trust"
)

func init() {
	extraCommands = append(extraCommands, pushCommand(), trustCommand(), signCommand())
	categories["push"] = "Workers"
	categories["sign"] = "Workers"
	categories["trust"] = "Workers"
	for path, n := range map[string]int{"push": 2, "trust get": 0, "trust set": 1, "sign": 1} {
		maxArgs[path] = n
	}
}

func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "plain-http", Usage: "talk HTTP to a registry on loopback (127.0.0.1, ::1, localhost) only"},
		&cli.StringFlag{Name: "docker-config", Usage: "Docker config `FILE` for registry credentials (default: Docker's)"},
	}
}

func registryOptions(c *cli.Context) host.RegistryOptions {
	return host.RegistryOptions{PlainHTTP: c.Bool("plain-http"), DockerConfig: c.String("docker-config")}
}

// enrollReference is `hall enroll oci://…`.
func enrollReference(c *cli.Context, ref string) error {
	if c.IsSet("record") || c.IsSet("bundle") {
		return failf("--record and --bundle are for a local module: a registry artifact carries its record (in the module or a record layer) and its signatures (in the registry)")
	}
	h, err := openHallWith(c, host.Options{MissingRulesOK: true, Compiler: selfCompiler()})
	if err != nil {
		return err
	}
	defer h.Close(contextOf(c))
	res, err := h.EnrollReference(contextOf(c), host.EnrollReferenceRequest{
		Reference: ref, Registry: registryOptions(c), AddRule: c.Bool("add-rule") || firstEnrollment(c), Actor: localActor(),
	})
	if err != nil {
		return cli.Exit(prefixLines("hall: enroll refused: ", err.Error()), exitError)
	}
	return printEnrolled(c, res)
}

// localSignature is the Sigstore bundle of a local module: --bundle FILE,
// else MODULE.wasm.sigstore.json beside it (nil when neither).
func localSignature(c *cli.Context, module string) (*host.Signed, error) {
	path := c.String("bundle")
	if path == "" {
		path = module + ".sigstore.json"
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, failf("--bundle: %v", err)
	}
	if st.Size() > trust.MaxSignatureBytes {
		return nil, failf("%s: %d bytes, over the %d-byte limit of a signature bundle; it was not read", path, st.Size(), trust.MaxSignatureBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, failf("--bundle: %v", err)
	}
	return &host.Signed{Source: module, Signatures: []trust.Signature{{Format: trust.FormatBundle, Bundle: b, Source: path}}}, nil
}

// printProvenance prints where an enrolled module came from, who signed
// it and the trust verdict.
func printProvenance(c *cli.Context, p *host.ProvenanceBody) {
	if p == nil {
		return
	}
	w := c.App.Writer
	if p.Source != "" {
		fmt.Fprintf(w, "  source:    %s\n", p.Source)
	}
	t := p.Trust
	switch {
	case t.Verified:
		fmt.Fprintf(w, "  signer:    %s (signature %s)\n", t.Signer, p.SignatureDigest)
	case len(p.Signatures) > 0:
		fmt.Fprintf(w, "  signer:    none verified\n")
	default:
		fmt.Fprintf(w, "  signer:    unsigned\n")
	}
	if t.Pattern != "" {
		fmt.Fprintf(w, "  trust:     %s (%s)\n", t.Level, t.Pattern)
	} else {
		fmt.Fprintf(w, "  trust:     no trust policy applies\n")
	}
	if !t.Verified && t.Level == trust.Audit {
		fmt.Fprintf(c.App.ErrWriter, "hall: warning: trust policy %s is audit: enrolled although %s\n", t.Pattern, t.Problem)
	}
}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push a worker module to an OCI registry as a Wasm artifact",
		ArgsUsage: "MODULE.wasm oci://HOST[:PORT]/REPO:TAG",
		Description: "The artifact is the Wasm OCI layout: config application/vnd.wasm.config.v0+json, one layer\n" +
			"application/wasm (the module, its registry record embedded by hall build). --record FILE adds the\n" +
			"record as a second layer application/vnd.wcp.record.v1+json. Prints the manifest digest: sign it\n" +
			"with cosign sign --key, enroll it with hall enroll oci://…@DIGEST.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "record", Usage: "registry record `FILE` to push as a second layer"},
			&cli.BoolFlag{Name: "json", Usage: "print {reference, digest, size} as JSON"},
		}, registryFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return failf("push needs MODULE.wasm and oci://HOST[:PORT]/REPO:TAG")
			}
			module, err := readModule(c.Args().Get(0))
			if err != nil {
				return failf("%v", err)
			}
			ref, err := oci.ParseReference(c.Args().Get(1))
			if err != nil {
				return failf("%v", err)
			}
			var record []byte
			if rp := c.String("record"); rp != "" {
				if record, err = os.ReadFile(rp); err != nil {
					return failf("--record: %v", err)
				}
			}
			o := registryOptions(c)
			desc, err := oci.Push(contextOf(c), ref, module, record, oci.Options{PlainHTTP: o.PlainHTTP, DockerConfig: o.DockerConfig})
			if err != nil {
				return failf("push: %v", err)
			}
			pinned := ref
			pinned.Tag, pinned.Digest = "", desc.Digest.String()
			if c.Bool("json") {
				return printJSON(c, map[string]any{"reference": ref.String(), "digest": desc.Digest.String(), "pinned": pinned.String(), "size": desc.Size})
			}
			fmt.Fprintf(c.App.Writer, "pushed %s\n  digest:    %s\n  pinned:    %s\n", ref, desc.Digest, pinned)
			return nil
		},
	}
}

func trustCommand() *cli.Command {
	return &cli.Command{
		Name:  "trust",
		Usage: "show or replace the trust policy (trust.json): who must have signed the workers of each namespace",
		Subcommands: []*cli.Command{
			{
				Name:      "get",
				Usage:     "print the trust policy in force (keys inline), or say there is none",
				ArgsUsage: " ",
				Flags:     hallFlags(),
				Action: func(c *cli.Context) error {
					h, err := openHallWith(c, host.Options{MissingRulesOK: true})
					if err != nil {
						return err
					}
					defer h.Close(contextOf(c))
					doc, digest := h.TrustDocument()
					if doc == nil {
						fmt.Fprintln(c.App.ErrWriter, "hall: no trust policy (trust.json): workers are enrolled without checking who signed them")
						return nil
					}
					fmt.Fprintf(c.App.ErrWriter, "hall: trust policy %s\n", digest)
					_, err = c.App.Writer.Write(doc)
					return err
				},
			},
			{
				Name:      "set",
				Usage:     "replace the trust policy with FILE (key and trusted-root paths relative to FILE are inlined); recorded in the evidence ledger",
				ArgsUsage: "FILE",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "if-match", Usage: "replace only if the policy in force has this `DIGEST` (none: there is none)"},
				}, hallFlags()...),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return failf("trust set needs FILE")
					}
					path := c.Args().First()
					raw, err := os.ReadFile(path)
					if err != nil {
						return failf("%v", err)
					}
					doc, err := trust.Resolve(raw, filepath.Dir(path))
					if err != nil {
						return failf("%s: %v", path, err)
					}
					h, err := openHallWith(c, host.Options{MissingRulesOK: true})
					if err != nil {
						return err
					}
					defer h.Close(contextOf(c))
					digest, err := h.SetTrust(contextOf(c), doc, c.String("if-match"), localActor())
					if err != nil {
						return failf("trust set: %v", err)
					}
					fmt.Fprintf(c.App.Writer, "trust policy %s in force (recorded)\n", digest)
					return nil
				},
			},
		},
	}
}

// printReceiptSigner prints who signed the module a receipt names: the
// provenance change recorded with the enrollment of that record and
// module, the latest one before the dispatch.
func printReceiptSigner(c *cli.Context, s auditLedger, r *ledger.Receipt) {
	w := c.App.Writer
	if r.Signer != "" {
		// Signed with the receipt: who signed the module that ran, as the
		// trust policy in force verified it when the dispatch was decided.
		fmt.Fprintf(w, "receipt signer: %s\n", safe(r.Signer))
	}
	changes, err := s.Changes(contextOf(c), host.ChangeProvenance)
	if err != nil {
		fmt.Fprintf(w, "signer: not known (%s)\n", safeMsg(err.Error()))
		return
	}
	var found *host.ProvenanceBody
	var id string
	for _, ch := range changes {
		if ch.Digest != r.RecordDigest || ch.ArtifactHash != r.ArtifactHash || ch.At.After(r.DispatchedAt) {
			continue
		}
		var b host.ProvenanceBody
		if json.Unmarshal(ch.Body, &b) == nil {
			found, id = &b, ch.ChangeID
		}
	}
	switch {
	case found == nil:
		fmt.Fprintln(w, "signer: none recorded (enrolled without a trust policy or a signature)")
	case found.Trust.Verified && found.Trust.Signer != nil:
		fmt.Fprintf(w, "signer: %s, verified under trust policy %s (%s); signature %s; source %s; provenance change %s\n",
			safe(found.Trust.Signer.String()), safe(found.Trust.Pattern), found.Trust.Level, safe(found.SignatureDigest), safe(found.Source), safe(id))
	default:
		fmt.Fprintf(w, "signer: not verified (%s, %s): %s; provenance change %s\n", safe(found.Trust.Pattern), found.Trust.Level, safe(found.Trust.Problem), safe(id))
	}
}

func signCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign a worker module or registry artifact with a key, in the formats cosign writes (for teams without cosign)",
		ArgsUsage: "MODULE.wasm | oci://HOST[:PORT]/REPO:TAG|@sha256:HEX",
		Description: "A file gets MODULE.wasm.sigstore.json (or --bundle FILE): the Sigstore bundle cosign sign-blob --key --bundle\n" +
			"writes. A registry artifact gets the bundle cosign sign --key attaches (a referrer, or the sha256-<hex> tag index\n" +
			"where the registry has no referrers API), signing the manifest digest the tag resolves to now.\n" +
			"--generate-key PREFIX writes PREFIX.key (PKCS#8, unencrypted, mode 0600) and PREFIX.pub (for trust.json).",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "private key `FILE` (ECDSA P-256 or Ed25519, PKCS#8 PEM)"},
			&cli.StringFlag{Name: "bundle", Usage: "write the bundle of a file to `FILE` (default MODULE.wasm.sigstore.json)"},
			&cli.StringFlag{Name: "generate-key", Usage: "write a new key pair `PREFIX`.key and PREFIX.pub, then stop"},
		}, registryFlags()...),
		Action: func(c *cli.Context) error {
			if p := c.String("generate-key"); p != "" {
				priv, pub, err := trust.GenerateSigningKey()
				if err != nil {
					return failf("%v", err)
				}
				if _, err := os.Stat(p + ".key"); err == nil {
					return failf("%s.key exists: choose another prefix (a key is never overwritten)", p)
				}
				if err := os.WriteFile(p+".key", priv, 0o600); err != nil {
					return failf("%v", err)
				}
				if err := os.WriteFile(p+".pub", pub, 0o644); err != nil {
					return failf("%v", err)
				}
				fmt.Fprintf(c.App.Writer, "wrote %s.key (private, keep it secret) and %s.pub (list it in trust.json)\n", p, p)
				return nil
			}
			if c.NArg() != 1 || c.String("key") == "" {
				return failf("sign needs --key FILE and one MODULE.wasm or oci:// reference")
			}
			raw, err := os.ReadFile(c.String("key"))
			if err != nil {
				return failf("--key: %v", err)
			}
			key, err := trust.LoadSigningKey(raw)
			if err != nil {
				return failf("--key %s: %v", c.String("key"), err)
			}
			target := c.Args().First()
			if !oci.IsReference(target) {
				module, err := readModule(target)
				if err != nil {
					return failf("%v", err)
				}
				b, err := key.SignBlob(module)
				if err != nil {
					return failf("signing: %v", err)
				}
				out := c.String("bundle")
				if out == "" {
					out = target + ".sigstore.json"
				}
				if err := os.WriteFile(out, b, 0o644); err != nil {
					return failf("%v", err)
				}
				fmt.Fprintf(c.App.Writer, "signed %s (%s)\n  bundle:    %s\n", target, sha256Hex(module), out)
				return nil
			}
			ref, err := oci.ParseReference(target)
			if err != nil {
				return failf("%v", err)
			}
			o := registryOptions(c)
			oo := oci.Options{PlainHTTP: o.PlainHTTP, DockerConfig: o.DockerConfig}
			desc, repo, err := oci.Resolve(contextOf(c), ref, oo)
			if err != nil {
				return failf("%v", err)
			}
			b, err := key.SignManifest(ref.Registry+"/"+ref.Repository, desc.Digest.Encoded())
			if err != nil {
				return failf("signing: %v", err)
			}
			att, err := oci.AttachBundle(contextOf(c), repo, desc, b)
			if err != nil {
				return failf("%v", err)
			}
			fmt.Fprintf(c.App.Writer, "signed %s\n  digest:    %s\n  signature: %s (referrer)\n", ref, desc.Digest, att.Digest)
			return nil
		},
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
