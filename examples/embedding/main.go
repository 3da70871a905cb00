// Command embedding shows the Hall embedded in a Go service: open a Hall
// over a working directory, enroll a worker module, and dispatch a
// governed request to it in-process.
//
//	go run ./examples/embedding -module summarizer.wasm -record registry_record.json -rules rules.json < doc.txt
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/google/uuid"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

func main() {
	if err := run(os.Stdin, os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "embedding:", err)
		os.Exit(1)
	}
}

func run(stdin io.Reader, stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("embedding", flag.ContinueOnError)
	dir := fs.String("dir", ".", "the Hall's working directory (rules.json, enrolled/, .hall/)")
	module := fs.String("module", "", "worker module to enroll (.wasm)")
	record := fs.String("record", "", "its registry record (JSON)")
	capability := fs.String("capability", "cap.doc.summarize", "capability to request")
	tenant := fs.String("tenant", "org.acme", "tenant id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()

	h, err := host.Open(ctx, host.Options{
		Dir:    *dir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer h.Close(ctx)

	if *module != "" {
		wasm, err := os.ReadFile(*module)
		if err != nil {
			return err
		}
		var rec []byte
		if *record != "" {
			if rec, err = os.ReadFile(*record); err != nil {
				return err
			}
		}
		res, err := h.Enroll(ctx, host.EnrollRequest{Module: wasm, Record: rec, RecordSource: *record})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "enrolled %s as %s\n", res.Record.WorkerID, res.ArtifactHash)
	}

	in := wcp.RouteInput{
		CapabilityID:  *capability,
		Env:           "dev",
		DataLabel:     "INTERNAL",
		TenantRisk:    "low",
		QoSClass:      "P2",
		TenantID:      *tenant,
		CorrelationID: uuid.NewString(),
	}
	if err := in.Validate(); err != nil {
		return err
	}
	payload, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	res, err := h.Run(ctx, host.RunRequest{Input: &in, Payload: payload})
	if err != nil {
		return err
	}
	switch d := res.Decision; {
	case d.Denied:
		return fmt.Errorf("denied %s: %s", d.DenyReason.Code, d.DenyReason.Message)
	case res.Err != nil:
		return fmt.Errorf("worker %s failed (%s): %w", res.WorkerID, res.Outcome, res.Err)
	case !res.Ran:
		return errors.New("dry run: nothing ran")
	}
	stdout.Write(res.Output)
	fmt.Fprintf(os.Stderr, "\nreceipt %s (decision %s)\n", res.ReceiptID, res.Decision.DecisionID)
	return nil
}
