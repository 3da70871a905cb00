package server

import (
	"net/http"
	"slices"
	"strings"
)

// CORS headers of the API (docs/HTTP.md, "CORS").
const (
	corsMethods = "GET, POST, PUT, DELETE, OPTIONS"
	corsHeaders = "Authorization, Content-Type, If-Match, X-Request-ID, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID"
	corsExpose  = "X-Request-ID, ETag, Retry-After, WWW-Authenticate, Location, Mcp-Session-Id"
	corsMaxAge  = "600"
)

// cors lets the pages of the configured origins (Config.CORSOrigins and
// hall.json http.cors_origins, read at each request so a reload applies)
// call the API from a browser: a preflight from an allowed origin is
// answered 204 without a token (browsers send none), one from any other
// origin 403 FORBIDDEN; an allowed origin's requests get
// Access-Control-Allow-Origin. With "*" the header is "*" and credentials
// are never allowed; a listed origin is echoed, with credentials. The
// console (/console) is same-origin only and gets no CORS headers. Requests
// without an Origin header are not touched.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || r.URL.Path == consolePath || strings.HasPrefix(r.URL.Path, consolePath+"/") {
			next.ServeHTTP(w, r)
			return
		}
		listed, star := s.corsAllowed(origin)
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		h := w.Header()
		h.Add("Vary", "Origin")
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !listed && !star {
				writeError(w, r, errf(http.StatusForbidden, CodeForbidden, "cross-origin requests from "+safeOrigin(origin)+" are not allowed: list the origin in hall.json http.cors_origins or hall serve --cors-origin"))
				return
			}
			corsAllow(h, origin, listed)
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if listed || star {
			corsAllow(h, origin, listed)
			h.Set("Access-Control-Expose-Headers", corsExpose)
		}
		next.ServeHTTP(w, r)
	})
}

// corsAllow sets the allowed origin: a listed origin is echoed and may
// send credentials; "*" never may (the Fetch standard refuses the pair,
// and a wildcard with credentials would hand every site the caller's).
func corsAllow(h http.Header, origin string, listed bool) {
	if listed {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		return
	}
	h.Set("Access-Control-Allow-Origin", "*")
}

// corsAllowed reports whether origin is listed, and whether "*" is.
func (s *Server) corsAllowed(origin string) (listed, star bool) {
	for _, list := range [][]string{s.cfg.CORSOrigins, s.h.CORSOrigins()} {
		if slices.Contains(list, origin) {
			listed = true
		}
		if slices.Contains(list, "*") {
			star = true
		}
	}
	return listed && origin != "*", star
}

// safeOrigin bounds an Origin header quoted in a message.
func safeOrigin(o string) string {
	if len(o) > 200 {
		o = o[:200] + "…"
	}
	return strings.ToValidUTF8(o, "?")
}
