// Command web_fetch is a Hall worker serving cap.web.fetch: it fetches a
// URL through the Hall's vetted egress (sdk Call.HTTP: only the hosts its
// record's network_egress lists, every exchange in telemetry) and answers
// its text, for the research pipeline (plugins/research_ingest).
//
// Input {"url": "..."}; output {"url", "status", "content_type", "text"}.
// A status of 400 or more fails the call, naming it.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o web_fetch.wasm ./plugins/web_fetch
package main

import (
	"fmt"
	"strings"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves.
const Capability = "cap.web.fetch"

func init() { sdk.Handle(Capability, fetch) }

func fetch(c *sdk.Call) error {
	var req struct {
		URL string `json:"url"`
	}
	if err := c.InputJSON(&req); err != nil {
		return err
	}
	if !strings.HasPrefix(req.URL, "http://") && !strings.HasPrefix(req.URL, "https://") {
		return fmt.Errorf("web_fetch: url %q: give an http:// or https:// URL", req.URL)
	}
	resp, err := c.HTTP(sdk.HTTPRequest{Method: "GET", URL: req.URL})
	if err != nil {
		return fmt.Errorf("web_fetch: %w", err)
	}
	if resp.Status >= 400 {
		return fmt.Errorf("web_fetch: GET %s answered %d", req.URL, resp.Status)
	}
	ct := resp.Headers["content-type"]
	text := string(resp.Body)
	if strings.HasPrefix(ct, "text/html") {
		text = StripTags(text)
	}
	return c.OutputJSON(map[string]any{"url": req.URL, "status": resp.Status, "content_type": ct, "text": text})
}

// StripTags removes HTML tags (anything from '<' to the next '>') and
// the contents of script and style elements, keeping the text between.
func StripTags(s string) string {
	var b strings.Builder
	lower := strings.ToLower(s)
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(lower[i:], "<script"), strings.HasPrefix(lower[i:], "<style"):
			end := "</script>"
			if strings.HasPrefix(lower[i:], "<style") {
				end = "</style>"
			}
			j := strings.Index(lower[i:], end)
			if j < 0 {
				return b.String()
			}
			i += j + len(end)
		case s[i] == '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				return b.String()
			}
			b.WriteByte(' ')
			i += j + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
