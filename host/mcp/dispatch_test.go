package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/ledger"
)

// TestCancelStopsTheWorker cancels a call of a worker that never returns,
// once it runs: the client sends notifications/cancelled, the worker is
// stopped by it (not by its 60 s limit), and the dispatch is recorded
// with outcome CANCELLED. With a progress token the answer is a stream the
// server flushes as it goes, and the call is seen running from its
// progress notifications; without one the answer is sent whole
// (wholeAnswers), and the call is seen running from the Hall's admission.
func TestCancelStopsTheWorker(t *testing.T) {
	for _, tc := range []struct {
		name, corr string
		progress   bool
	}{
		{"with progress", "mcp-cancel-1", true},
		{"without progress", "mcp-cancel-2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var progress atomic.Int32
			cs := connect(t, serve(t, server.Config{}), fx.acme, &sdk.ClientOptions{
				ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) { progress.Add(1) },
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				p := &sdk.CallToolParams{Name: "test_slow", Arguments: map[string]any{"input": "x"}, Meta: sdk.Meta{"correlation_id": tc.corr}}
				if tc.progress {
					p.Meta["progressToken"] = "p-1"
				}
				_, err := cs.CallTool(ctx, p)
				done <- err
			}()
			if tc.progress {
				eventually(t, "a progress notification", func() bool { return progress.Load() > 0 })
			} else {
				eventually(t, "the call admitted", func() bool { return fx.hall.Admission().Running > 0 })
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("CallTool after cancel: %v", err)
			}
			var rs []ledger.Receipt
			eventually(t, "the receipt of the cancelled call", func() bool {
				rs = receipts(t, tc.corr)
				return len(rs) == 1
			})
			// CANCELLED (not ok or LIMIT_TIMEOUT): the worker was stopped by
			// the cancellation, not by finishing or by its own limit.
			if rs[0].Outcome != "CANCELLED" || rs[0].TenantID != "org.acme" {
				t.Fatalf("receipt %+v, want outcome CANCELLED", rs[0])
			}
			if !tc.progress && progress.Load() != 0 {
				t.Fatalf("%d progress notifications without a progress token", progress.Load())
			}
		})
	}
}

// TestAnswerWholeUnlessProgress checks how a tools/call is answered over
// HTTP: always as an SSE stream (the SDK's), sent in one piece with a
// Content-Length when the request has no progress token, and flushed as
// it goes (chunked) when it has one.
func TestAnswerWholeUnlessProgress(t *testing.T) {
	s, err := openLean(http.DefaultClient, serve(t, server.Config{}), fx.acme)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name    string
		meta    string
		chunked bool
	}{
		{"no progress token", `{"correlation_id":"mcp-whole-1"}`, false},
		{"progress token", `{"correlation_id":"mcp-whole-2","progressToken":"p-9"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"test_noop","arguments":{"input":"x"},"_meta":%s}}`, i+1, tc.meta)
			res, raw, err := s.post([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("%d %s: %s", res.StatusCode, ct, raw)
			}
			chunked := slices.Contains(res.TransferEncoding, "chunked")
			if chunked != tc.chunked || (!chunked && res.ContentLength != int64(len(raw))) {
				t.Fatalf("transfer encoding %v, content length %d of %d bytes; want chunked %v", res.TransferEncoding, res.ContentLength, len(raw), tc.chunked)
			}
			var out struct {
				ID     int `json:"id"`
				Result struct {
					IsError bool           `json:"isError"`
					Meta    map[string]any `json:"_meta"`
				} `json:"result"`
			}
			if err := json.Unmarshal(lastMessage(res, raw), &out); err != nil || out.ID != i+1 || out.Result.IsError || out.Result.Meta["receipt_id"] == nil {
				t.Fatalf("answer %s (%v)", raw, err)
			}
		})
	}
}

// TestSaturationRefusesCalls shares the API's bound on dispatches in
// flight: with a bound of 1 and a call running, a second call is refused
// with HALL_SATURATED, as POST /wcp/run would be.
func TestSaturationRefusesCalls(t *testing.T) {
	var progress atomic.Int32
	endpoint := serve(t, server.Config{MaxConcurrent: 1})
	cs := connect(t, endpoint, fx.acme, &sdk.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) { progress.Add(1) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cs.CallTool(ctx, &sdk.CallToolParams{Name: "test_slow", Arguments: map[string]any{"input": "x"}, Meta: sdk.Meta{"progressToken": "p-2"}})
	}()
	eventually(t, "the first call running", func() bool { return progress.Load() > 0 })
	res := call(t, connect(t, endpoint, fx.other, nil), "test_noop", map[string]any{"input": "x"}, nil)
	if !res.IsError || metaString(res, "code") != "HALL_SATURATED" {
		t.Fatalf("isError %v _meta %v text %q", res.IsError, res.Meta, text(res))
	}
	cancel()
	<-done
	// The slot is released: calls are admitted again.
	eventually(t, "a call admitted after the slot is released", func() bool {
		r := call(t, cs, "test_noop", map[string]any{"input": "x"}, nil)
		return !r.IsError
	})
}

// TestToolsListChangedAfterEnrollment enrolls a worker for a new
// capability while a client is connected: the client is told the list
// changed, and the new tool is listed and callable.
func TestToolsListChangedAfterEnrollment(t *testing.T) {
	changed := make(chan struct{}, 16)
	cs := connect(t, serve(t, server.Config{}), fx.acme, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
	})
	if err := enroll(fx.noop, "late.json", true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatal("no notifications/tools/list_changed after the enrollment")
	}
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "test_late") {
		t.Fatalf("tools after enrollment: %v", names)
	}
	if r := call(t, cs, "test_late", map[string]any{"input": "x"}, nil); r.IsError {
		t.Fatalf("new tool: %s", text(r))
	}
}
