// Package certfile serves a TLS certificate and key from two PEM files and
// picks up a renewed pair without a restart: hall serve --tls-cert,
// --tls-key. A pair that does not load (half-written, mismatched) leaves the
// last good one serving and is reported once per change.
package certfile

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// Reloader holds the certificate of a cert and key file pair.
type Reloader struct {
	certPath, keyPath string
	// OnReload, when set, is called after each change of the files: err
	// nil for a new pair in use, else why the last good pair still serves.
	onReload func(err error)

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   stamp
	checked time.Time
}

// stamp is what tells a changed file: size and modification time of both.
type stamp struct {
	certSize, keySize int64
	certMod, keyMod   time.Time
}

// checkEvery bounds how often a handshake looks at the files.
const checkEvery = time.Second

// New loads the pair; an error names the file and what is wrong with it.
// onReload may be nil.
func New(certPath, keyPath string, onReload func(err error)) (*Reloader, error) {
	r := &Reloader{certPath: certPath, keyPath: keyPath, onReload: onReload}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.checked = cert, st, time.Now()
	return r, nil
}

func (r *Reloader) stat() (stamp, error) {
	c, err := os.Stat(r.certPath)
	if err != nil {
		return stamp{}, fmt.Errorf("--tls-cert: %w", err)
	}
	k, err := os.Stat(r.keyPath)
	if err != nil {
		return stamp{}, fmt.Errorf("--tls-key: %w", err)
	}
	return stamp{c.Size(), k.Size(), c.ModTime(), k.ModTime()}, nil
}

func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certPath, r.keyPath)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w (give a PEM certificate chain and the PEM private key of its first certificate)", r.certPath, r.keyPath, err)
	}
	return &cert, nil
}

// Reload looks at the files now and loads them if they changed. It
// returns the error of a changed pair that does not load (the last good
// pair keeps serving).
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *Reloader) reloadLocked() error {
	r.checked = time.Now()
	st, err := r.stat()
	if err == nil && st == r.stamp {
		return nil
	}
	if err == nil {
		var cert *tls.Certificate
		if cert, err = r.load(); err == nil {
			r.cert = cert
		}
	}
	// A failed pair is reported once, not at every handshake: the next
	// change of the files tries again.
	r.stamp = st
	if r.onReload != nil {
		r.onReload(err)
	}
	return err
}

// GetCertificate is a tls.Config.GetCertificate: the current pair, the
// files looked at no more than once a second.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= checkEvery {
		r.reloadLocked()
	}
	return r.cert, nil
}

// Config returns a server tls.Config serving the pair (TLS 1.2 or later,
// HTTP/1.1).
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: []string{"http/1.1"}}
}
