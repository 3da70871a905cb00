package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// getDocument answers GET /admin/policy and GET /admin/config: the stored
// document, byte for byte, with its digest as the ETag; 404 when there is
// none.
func (s *Server) getDocument(kind host.DocKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := s.h.Document(r.Context(), kind)
		if err != nil {
			s.log.Error("hall: reading a document failed", "request_id", requestID(r), "kind", string(kind), "error", err)
			writeError(w, r, unavailableOr(err, errf(http.StatusInternalServerError, CodeInternal, "the "+string(kind)+" document could not be read (see the server log)")))
			return
		}
		if !d.Present {
			writeError(w, r, errf(http.StatusNotFound, CodeNotFound, "the Hall has no "+string(kind)+" document: PUT /admin/"+string(kind)+" stores one"))
			return
		}
		w.Header().Set("ETag", `"`+host.DocDigest(d)+`"`)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		w.Write(d.Data)
	}
}

// putDocument answers PUT /admin/policy and PUT /admin/config: the body
// replaces the document when it compiles (host.Hall.ReplaceDocument: a
// recorded change, in force on this node when the answer is sent and on
// the others of a shared database once they load it). If-Match, when
// sent, must name the stored document (its ETag; "none" for no document).
func (s *Server) putDocument(kind host.DocKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if e := requireMedia(r, "application/json"); e != nil {
			writeError(w, r, e)
			return
		}
		body, e := readBody(w, r, s.cfg.MaxBody)
		if e != nil {
			writeError(w, r, e)
			return
		}
		ifMatch := strings.Trim(strings.TrimSpace(r.Header.Get("If-Match")), `"`)
		digest, err := s.h.ReplaceDocument(context.WithoutCancel(r.Context()), kind, body, ifMatch, tokenActor(r))
		var de *host.DocumentError
		switch {
		case err == nil:
		case adminRefused(w, r, err):
			return
		case errors.As(err, &de) && errors.Is(err, host.ErrPreconditionFailed):
			writeError(w, r, errf(http.StatusPreconditionFailed, CodePreconditionFailed, de.Error()))
			return
		case errors.As(err, &de):
			code := CodeInvalidRequest
			if kind == host.DocPolicy {
				code = string(wcp.CodePolicyInvalid)
			}
			writeError(w, r, errf(http.StatusUnprocessableEntity, code, de.Error()))
			return
		default:
			s.log.Error("hall: replacing a document failed", "request_id", requestID(r), "kind", string(kind), "error", err)
			writeError(w, r, unavailableOr(err, errf(http.StatusInternalServerError, CodeInternal, "the "+string(kind)+" document could not be replaced (see the server log under request id "+requestID(r)+")")))
			return
		}
		s.log.Info("hall: document replaced", "request_id", requestID(r), "kind", string(kind), "digest", digest, "token_id", principal(r).ID)
		w.Header().Set("ETag", `"`+digest+`"`)
		writeJSON(w, http.StatusOK, map[string]any{"kind": string(kind), "digest": digest})
	}
}
