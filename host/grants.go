package host

import (
	"errors"
	"fmt"
	"io/fs"

	"path/filepath"
	"strings"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/registry"
)

// systemRoots are directories no worker is granted, read or write, nor
// anything under them: /proc exposes the Hall's own environment
// (/proc/self/environ holds every HALL_SECRET_*, declared or not) and
// memory, /sys and /dev the machine. "/" contains them all.
var systemRoots = []string{"/proc", "/sys", "/dev"}

// vetGrants refuses filesystem grants a worker must never hold, whatever
// its record says (the record may come from the module's own embedded
// section): "/", /proc, /sys, /dev, the Hall's state directory (ledger,
// signing key, compiled-code cache, artifacts), the enrolled records, the
// rules file and the configuration, and any path that contains one of them
// or resolves into one through symbolic links. Each problem names the
// field and what to grant instead.
func vetGrants(rec *wcp.Record, opts Options) []registry.Problem {
	env := rec.PrivilegeEnvelope
	if env == nil {
		return nil
	}
	protected := []struct{ what, path string }{
		{"the Hall's state directory", opts.Home},
		{"the enrolled records directory", opts.RegistryDir},
		{"the rules file", opts.Rules},
		{"the Hall configuration", configPath(opts)},
	}
	var probs []registry.Problem
	for _, list := range []struct {
		field string
		dirs  []string
	}{{"privilege_envelope.filesystem_writes", env.FilesystemWrites}, {"privilege_envelope.filesystem_reads", env.FilesystemReads}} {
		for i, d := range list.dirs {
			field := fmt.Sprintf("%s[%d]", list.field, i)
			if !filepath.IsAbs(d) {
				continue // the record schema reports relative paths
			}
			grant := resolvePath(d)
			if grant == "/" {
				probs = append(probs, registry.Problem{Field: field, Message: fmt.Sprintf("%q grants the whole file system; grant only the directories the worker needs", d)})
				continue
			}
			for _, root := range systemRoots {
				if within(grant, root) {
					probs = append(probs, registry.Problem{Field: field, Message: fmt.Sprintf("%q resolves to %s, under %s, which no worker is granted (it exposes the host and the Hall's environment)", d, grant, root)})
				}
			}
			for _, p := range protected {
				if p.path == "" {
					continue
				}
				own := resolvePath(p.path)
				if within(grant, own) || within(own, grant) {
					probs = append(probs, registry.Problem{Field: field, Message: fmt.Sprintf("%q overlaps %s (%s); grant a directory outside it", d, p.what, own)})
				}
			}
		}
	}
	return probs
}

func configPath(opts Options) string {
	if opts.ConfigFile != "" {
		return opts.path(opts.ConfigFile)
	}
	return opts.path("hall.json")
}

// within reports whether path is dir or inside it (both clean and
// absolute).
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// resolvePath returns p absolute and clean with every symbolic link of its
// longest existing prefix resolved, so a grant cannot reach a protected
// directory through a link, nor hide one behind a path not created yet.
func resolvePath(p string) string {
	p, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	rest := ""
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return p
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
