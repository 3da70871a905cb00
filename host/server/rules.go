package server

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// CodePreconditionFailed answers a PUT /admin/rules whose If-Match does
// not name the rules in force: another administrator changed them since
// they were read.
const CodePreconditionFailed = string(wcp.CodePreconditionFailed)

// getRules answers GET /admin/rules: the rules document in force, byte
// for byte as it was loaded, with its digest as the ETag.
func (s *Server) getRules(w http.ResponseWriter, r *http.Request) {
	data, digest, err := s.h.RulesDocument()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, r, errf(http.StatusNotFound, CodeNotFound, "the Hall has no rules file yet: PUT /admin/rules creates it"))
		return
	case err != nil:
		s.log.Error("hall: reading the rules failed", "request_id", requestID(r), "error", err)
		writeError(w, r, errf(http.StatusInternalServerError, CodeInternal, "the rules could not be read: "+err.Error()))
		return
	}
	w.Header().Set("ETag", `"`+digest+`"`)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

// putRules answers PUT /admin/rules: the body replaces the rules when it
// compiles and shadows no rule; If-Match, when sent, must name the rules
// in force (their ETag).
func (s *Server) putRules(w http.ResponseWriter, r *http.Request) {
	if e := requireMedia(r, "application/json"); e != nil {
		writeError(w, r, e)
		return
	}
	body, e := readBody(w, r, s.cfg.MaxBody)
	if e != nil {
		writeError(w, r, e)
		return
	}
	ifMatch, conditional := r.Header.Get("If-Match"), r.Header.Get("If-Match") != ""
	if conditional {
		// Preconditions come before the body is judged (RFC 9110 §13.2.2).
		cur, ok := s.rulesDigest()
		if ifMatch = matchingTag(ifMatch, cur); ifMatch == "" || !ok {
			s.preconditionFailed(w, r, cur)
			return
		}
	}
	if !json.Valid(body) {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidJSON, "the rules document is not valid JSON"))
		return
	}
	warnings, digest, err := s.h.ReplaceRules(context.WithoutCancel(r.Context()), body, ifMatch, tokenActor(r))
	var re *host.RulesError
	switch {
	case err == nil:
	case adminRefused(w, r, err):
		return
	case errors.As(err, &re):
		// The rules may have changed between the check above and the
		// replacement: ReplaceRules compares again under its lock.
		if cur, ok := s.rulesDigest(); conditional && (!ok || cur != ifMatch) {
			s.preconditionFailed(w, r, cur)
			return
		}
		writeError(w, r, errf(http.StatusUnprocessableEntity, string(re.Code()), re.Error()))
		return
	default:
		s.log.Error("hall: replacing the rules failed", "request_id", requestID(r), "error", err)
		writeError(w, r, unavailableOr(err, errf(http.StatusInternalServerError, CodeInternal, "the rules could not be replaced (see the server log under request id "+requestID(r)+"); the rules in force are unchanged")))
		return
	}
	s.log.Info("hall: rules replaced", "request_id", requestID(r), "rules_digest", digest, "token_id", principal(r).ID, "warnings", len(warnings))
	w.Header().Set("ETag", `"`+digest+`"`)
	writeJSON(w, http.StatusOK, map[string]any{"rules_digest": digest, "warnings": nonNil(warnings)})
}

// rulesDigest is the digest of the rules in force; false when the rules
// file changed on disk and was not reloaded yet (or cannot be read).
func (s *Server) rulesDigest() (string, bool) {
	_, d, err := s.h.RulesDocument()
	return d, err == nil
}

func (s *Server) preconditionFailed(w http.ResponseWriter, r *http.Request, cur string) {
	msg := "If-Match does not name the rules in force; nothing was changed: GET /admin/rules and retry with its ETag"
	if cur != "" {
		w.Header().Set("ETag", `"`+cur+`"`)
	}
	writeError(w, r, errf(http.StatusPreconditionFailed, CodePreconditionFailed, msg))
}

// matchingTag returns the digest of the If-Match header that names cur:
// cur for "*" or a strong tag equal to it ("" when none does). A bare
// digest is accepted too; weak tags never match (If-Match compares
// strongly).
func matchingTag(header, cur string) string {
	if cur == "" {
		return ""
	}
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return cur
		}
		if strings.HasPrefix(tag, "W/") {
			continue
		}
		if strings.Trim(tag, `"`) == cur {
			return cur
		}
	}
	return ""
}
