package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServeOptions are the connection-level settings of ListenAndServe and
// Serve. Zero fields take the defaults in brackets.
type ServeOptions struct {
	// ReadHeaderTimeout bounds reading the request headers [10s]; it is
	// what stops a slow-loris client from holding a connection.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included [60s].
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of the response [2m]. It must exceed the longest dispatch the Hall
	// allows (hall.json limits.timeout_ms, 10s by default).
	WriteTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection between requests [2m].
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long shutdown waits for requests in
	// flight (dispatches finish and commit their receipts) before closing
	// the connections that remain [30s].
	ShutdownTimeout time.Duration
	// Logger receives the http.Server's own errors (TLS handshakes,
	// malformed requests) [discarded].
	Logger *slog.Logger
}

func (o ServeOptions) withDefaults() ServeOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 10*time.Second)
	def(&o.ReadTimeout, time.Minute)
	def(&o.WriteTimeout, 2*time.Minute)
	def(&o.IdleTimeout, 2*time.Minute)
	def(&o.ShutdownTimeout, 30*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ListenAndServe listens on addr and serves handler until ctx is done,
// then shuts down gracefully (see Serve).
func ListenAndServe(ctx context.Context, addr string, handler http.Handler, opts ServeOptions) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, handler, opts)
}

// Serve serves handler on ln until ctx is done. It then stops accepting
// connections, waits up to ShutdownTimeout for the requests in flight to
// complete (a dispatch that is running finishes and commits its receipt),
// and returns nil; if requests remain after the timeout, their connections
// are closed and an error says so.
//
// # Notes
//
//   - Requests are not given ctx: cancelling it starts the shutdown, it
//     does not cancel the work in flight.
func Serve(ctx context.Context, ln net.Listener, handler http.Handler, opts ServeOptions) error {
	opts = opts.withDefaults()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: requests still in flight after %s were cut off: %w", opts.ShutdownTimeout, err)
	}
	return nil
}
