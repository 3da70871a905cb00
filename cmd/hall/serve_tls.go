package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/internal/certfile"
)

// tlsFlags are hall serve's transport flags.
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"HALL_TLS_CERT"}, Usage: "serve HTTPS with this PEM certificate chain `FILE` (with --tls-key); a renewed file is picked up without a restart (and on SIGHUP)"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"HALL_TLS_KEY"}, Usage: "the PEM private key `FILE` of --tls-cert"},
		&cli.BoolFlag{Name: "insecure-http", Usage: "serve plain HTTP on a non-loopback address (bearer tokens cross the network in clear: only behind a TLS-terminating proxy or on a trusted network)"},
	}
}

// secureListener wraps ln in TLS when --tls-cert and --tls-key are given,
// and refuses plain HTTP on an address other hosts can reach unless
// --insecure-http: every request but /health and /metrics carries a bearer
// token, which plain HTTP sends in clear (issue 27). It returns the
// listener to serve, its URL scheme and, for TLS, a function that stops
// the SIGHUP reload of the pair.
func secureListener(ctx context.Context, c *cli.Context, ln net.Listener, logger *slog.Logger) (_ net.Listener, _ string, _ func(), err error) {
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	cert, key := c.String("tls-cert"), c.String("tls-key")
	switch {
	case (cert == "") != (key == ""):
		return nil, "", nil, failf("--tls-cert and --tls-key go together: give the certificate chain and its private key, or neither")
	case cert != "":
		certs, err := certfile.New(cert, key, func(err error) {
			if err != nil {
				logger.Error("hall: TLS certificate change does not load; the previous certificate keeps serving", "error", err.Error())
				return
			}
			logger.Info("hall: TLS certificate reloaded", "tls_cert", cert)
		})
		if err != nil {
			return nil, "", nil, failf("%v", err)
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer signal.Stop(hup)
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					certs.Reload()
				}
			}
		}()
		return tls.NewListener(ln, certs.Config()), "https", func() { cancel(); <-done }, nil
	}
	if ip := listenIP(ln); ip != nil && !ip.IsLoopback() {
		if !c.Bool("insecure-http") {
			return nil, "", nil, failf("--addr %s: refusing to serve plain HTTP on an address other hosts can reach (%s): bearer tokens would cross the network in clear. Give --tls-cert and --tls-key, listen on 127.0.0.1, or pass --insecure-http (behind a TLS-terminating proxy)", c.String("addr"), ln.Addr())
		}
		logger.Warn("hall: serving plain HTTP on an address other hosts can reach (--insecure-http): bearer tokens cross the network in clear", "address", ln.Addr().String())
	}
	return ln, "http", func() {}, nil
}

func listenIP(ln net.Listener) net.IP {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		return a.IP
	}
	return nil
}
