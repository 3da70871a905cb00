package wcp

import (
	"fmt"
	"regexp"
	"strings"
)

// IDKind names a family of WCP identifiers.
type IDKind string

// The identifier families the Hall validates. WCP §3.2 describes them as
// dot-separated lowercase segments behind a fixed prefix.
const (
	KindCapability IDKind = "capability"
	KindSpecies    IDKind = "worker species"
	KindWorker     IDKind = "worker"
	KindControl    IDKind = "control"
	KindOrg        IDKind = "organisation"
)

// maxIDLen bounds every identifier; WCP suggests 64, PyHall enforces
// nothing, and ids travel into file names and telemetry.
const maxIDLen = 128

var idPatterns = map[IDKind]*regexp.Regexp{
	// Underscores are allowed: the spec's own examples use them
	// (ctrl.obs.audit_log_append_only) and so does PyHall's control regex.
	KindCapability: regexp.MustCompile(`^cap(\.[a-z0-9][a-z0-9_-]*)+$`),
	KindSpecies:    regexp.MustCompile(`^wrk(\.[a-z0-9][a-z0-9_-]*)+$`),
	// A worker id lives in its signer's namespace: org.<name> or x.<name>
	// (WCP §5.10), followed by at least one more segment.
	KindWorker: regexp.MustCompile(`^(org|x)\.[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$`),
	// PyHall's control regex (registry.py), anchored without Python's
	// trailing-newline accident.
	KindControl: regexp.MustCompile(`^ctrl\.[a-z0-9][a-z0-9._-]*$`),
	KindOrg:     regexp.MustCompile(`^(org|x)(\.[a-z0-9][a-z0-9_-]*)+$`),
}

var idExamples = map[IDKind]string{
	KindCapability: "cap.doc.summarize",
	KindSpecies:    "wrk.doc.summarizer",
	KindWorker:     "org.acme.summarizer",
	KindControl:    "ctrl.obs.audit-log-append-only",
	KindOrg:        "org.acme",
}

// ValidID reports whether id is a well-formed identifier of kind.
func ValidID(kind IDKind, id string) bool {
	return len(id) <= maxIDLen && idPatterns[kind].MatchString(id)
}

// CheckID returns nil for a well-formed id, or an error that says what is
// expected, with an example.
func CheckID(kind IDKind, id string) error {
	if ValidID(kind, id) {
		return nil
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%s id is %d characters long; at most %d are allowed", kind, len(id), maxIDLen)
	}
	return fmt.Errorf("%q is not a valid %s id: expected lowercase dot-separated segments like %q", id, kind, idExamples[kind])
}

// ValidHexDigest reports whether s is a bare lowercase SHA-256 hex digest,
// the form attestation code hashes take (PyHall: ^[0-9a-f]{64}$). Unlike
// PyHall, a trailing newline is not accepted.
//
// It is on every attested decision's path, so it is a loop, not a regexp.
func ValidHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ValidArtifactHash reports whether s is "sha256:" followed by a lowercase
// SHA-256 hex digest, the form of a record's artifact_hash.
func ValidArtifactHash(s string) bool {
	return strings.HasPrefix(s, "sha256:") && ValidHexDigest(s[len("sha256:"):])
}
