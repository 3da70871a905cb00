package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
)

// formCache keeps the Hall's derived wasm forms of a module (merged data
// segments, guarded stack) in Config.CacheDir, each authenticated with an
// HMAC-SHA256 under Config.CacheKey.
//
// The forms are what the Engine compiles and runs in place of the
// enrolled module, so an entry is evidence of nothing by itself: the
// cache directory lives in the state directory, and an attacker who can
// write there could otherwise make another module run under an enrolled
// worker's name (TestRedteamCompiledFormCacheIsEvidence). An entry is
//
//	HMAC-SHA256(key, name || 0x00 || form) || form
//
// where name is the file name, which carries the SHA-256 of the verified
// module and every parameter of the rewrite: an entry moved to another
// name does not verify. An entry that does not verify is deleted, logged
// as altered and rebuilt from the verified module. Without a key nothing
// is read from or written to the directory: the forms are rebuilt in every
// process.
type formCache struct {
	dir string
	key []byte
	log *slog.Logger
}

// enabled reports whether entries are read and written.
func (c *formCache) enabled() bool { return c.dir != "" && len(c.key) > 0 }

func (c *formCache) tag(name string, form []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write(form)
	return m.Sum(nil)
}

// get returns the form stored under name when its tag verifies. A missing
// entry is a miss; an entry that does not verify is deleted, logged, and a
// miss.
func (c *formCache) get(name string) ([]byte, bool) {
	if !c.enabled() {
		return nil, false
	}
	path := filepath.Join(c.dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	if len(b) >= sha256.Size {
		form := b[sha256.Size:]
		if hmac.Equal(b[:sha256.Size], c.tag(name, form)) {
			return form, true
		}
	}
	c.log.Warn("sandbox: compiled-form cache entry altered (its HMAC does not verify): discarded; the form is rebuilt from the verified module",
		"file", path, "bytes", len(b))
	_ = os.Remove(path)
	return nil, false
}

// put stores form under name, atomically (a temporary file renamed) or not
// at all: the cache is an optimisation.
func (c *formCache) put(name string, form []byte) {
	if !c.enabled() {
		return
	}
	tmp, err := os.CreateTemp(c.dir, ".form-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(c.tag(name, form))
	if werr == nil {
		_, werr = tmp.Write(form)
	}
	cerr := tmp.Close()
	if werr == nil && cerr == nil {
		_ = os.Rename(tmp.Name(), filepath.Join(c.dir, name))
	}
	_ = os.Remove(tmp.Name())
}
