package mcp

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxToolName is the longest tool name ToolName produces: the bound of the
// strictest agent APIs (function names of at most 64 characters of
// [A-Za-z0-9_-]), tighter than MCP's own 128.
const maxToolName = 64

// ToolName is the MCP tool name of a capability id: the id without its
// "cap." prefix, dots replaced by underscores ("cap.doc.summarize" →
// "doc_summarize").
//
// # Notes
//
//   - The name depends on the capability id alone, so it is the same in
//     every process and after every change of the Hall.
//   - Names use only [a-z0-9_-] and at most 64 characters, which every
//     agent API accepts (MCP also allows dots; several model APIs do not).
//   - An id that contains "_" itself (so that the replacement could be
//     ambiguous) or whose name would be longer than 64 characters is
//     shortened to 55 characters and suffixed with "_" and the first 8 hex
//     digits, upper-case, of the SHA-256 of the id. Capability ids are
//     lower-case, so a suffixed name never equals an unsuffixed one.
//   - 32 bits can collide: two ids sharing their first 55 characters and
//     that suffix get the same ToolName. The Server never serves two tools
//     under one name: it renames each of them with a 64-bit suffix and says
//     so in tools/list (_meta.renamed_from, name_collides_with, and the
//     description) and in its log, and refuses any that still collide.
func ToolName(capability string) string {
	s := strings.ReplaceAll(strings.TrimPrefix(capability, "cap."), ".", "_")
	if !strings.Contains(capability, "_") && len(s) <= maxToolName && s != "" {
		return s
	}
	sum := sha256.Sum256([]byte(capability))
	suffix := "_" + strings.ToUpper(hex.EncodeToString(sum[:4]))
	if len(s) > maxToolName-len(suffix) {
		s = s[:maxToolName-len(suffix)]
	}
	return s + suffix
}
