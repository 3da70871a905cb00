package host

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// CheckCORSOrigin checks one allowed browser origin as hall.json's
// http.cors_origins and `hall serve --cors-origin` take it: "*", or
// scheme://host[:port] with scheme http or https, lower case, and nothing
// else (no path, query, user or trailing slash) — the form a browser sends
// in its Origin header, which is compared byte for byte.
func CheckCORSOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not an origin: %v (give scheme://host[:port], e.g. https://dash.example.com, or \"*\")", o, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q is not an origin: the scheme must be http or https (e.g. https://dash.example.com)", o)
	case u.Host == "" || u.User != nil || u.Opaque != "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#"):
		return fmt.Errorf("%q is not an origin: give scheme://host[:port] only, without path, query or trailing slash (e.g. https://dash.example.com)", o)
	case o != strings.ToLower(o):
		return fmt.Errorf("%q is not an origin as browsers send it: write it in lower case (%s)", o, strings.ToLower(o))
	}
	return nil
}

// CORSOrigins returns a copy of hall.json's http.cors_origins in force
// (without copying the rest of the configuration, as Config does).
func (h *Hall) CORSOrigins() []string {
	return slices.Clone(h.snap.Load().cfg.HTTP.CORSOrigins)
}
