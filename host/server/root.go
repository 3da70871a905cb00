package server

import (
	"net/http"
	"strings"
)

// rootPage is what a browser gets at /: where the console and the API's
// description are (a newcomer opening the server's address found a 404,
// issue 27).
const rootPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hall</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5">
<h1>Hall</h1>
<p>This is a Hall's HTTP API.</p>
<ul>
<li><a href="/console">Console</a>: workers, receipts and approvals (sign in with a token from <code>hall tokens create</code>)</li>
<li><a href="/openapi.json">OpenAPI document</a> of the JSON API</li>
<li><a href="/health">Health</a></li>
</ul>
</body></html>
`

// root answers GET /: links to the console, the OpenAPI document and
// health, as HTML for a browser and as JSON for anything else.
func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(rootPage))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": "hall", "version": s.cfg.Version,
		"console": consolePath, "openapi": "/openapi.json", "health": "/health",
	})
}
