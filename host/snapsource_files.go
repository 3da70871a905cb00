package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
	"github.com/wcphall/hall/internal/fsutil"
	"github.com/wcphall/hall/internal/trust"
)

// fileSource is the default SnapshotSource: the files named by Options,
// as the Hall has always read them. Names are the files' paths.
type fileSource struct {
	rules, config, policy, trust string
	// configExplicit and policyExplicit: the file was named in Options,
	// so its absence is an error rather than "none".
	configExplicit, policyExplicit bool
	registry                       string

	mu sync.Mutex // serialises Put and PutRecord within this process
}

// newFileSource is the SnapshotSource of the files of opts; empty fields
// take Open's defaults, relative paths are in opts.Dir.
func newFileSource(opts Options) *fileSource {
	if opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.Rules == "" {
		opts.Rules = "rules.json"
	}
	if opts.RegistryDir == "" {
		opts.RegistryDir = "enrolled"
	}
	policy, policyExplicit := opts.policyPath()
	return &fileSource{
		rules:          opts.path(opts.Rules),
		config:         configPath(opts),
		configExplicit: opts.ConfigFile != "",
		policy:         policy,
		policyExplicit: policyExplicit,
		trust:          opts.path("trust.json"),
		registry:       opts.path(opts.RegistryDir),
	}
}

func (f *fileSource) Load(context.Context) (*SnapshotDocs, error) {
	var docs SnapshotDocs
	var err error
	for _, k := range []DocKind{DocConfig, DocRules, DocPolicy, DocTrust} {
		d, err := f.read(k)
		if err != nil {
			return nil, err
		}
		switch k {
		case DocConfig:
			docs.Config = d
		case DocRules:
			docs.Rules = d
		case DocPolicy:
			docs.Policy = d
		case DocTrust:
			docs.Trust = d
		}
	}
	if docs.Records, err = f.records(); err != nil {
		return nil, err
	}
	return &docs, nil
}

func (f *fileSource) Get(_ context.Context, kind DocKind) (Doc, error) { return f.read(kind) }

// path is the file of kind, whether it was named explicitly, and the
// prefix of its read errors (as the Hall has always worded them).
func (f *fileSource) path(kind DocKind) (path string, explicit bool, what string, err error) {
	switch kind {
	case DocRules:
		return f.rules, false, "rules", nil
	case DocPolicy:
		return f.policy, f.policyExplicit, "policies", nil
	case DocConfig:
		return f.config, f.configExplicit, "config", nil
	case DocTrust:
		return f.trust, false, "trust", nil
	}
	return "", false, "", fmt.Errorf("snapshot source: unknown document kind %q: use host.DocRules, DocPolicy, DocConfig or DocTrust", kind)
}

func (f *fileSource) read(kind DocKind) (Doc, error) {
	path, explicit, what, err := f.path(kind)
	if err != nil {
		return Doc{}, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return Doc{Name: path}, nil
	}
	if err != nil {
		return Doc{}, fmt.Errorf("%s: %w", what, err)
	}
	if kind == DocTrust {
		// Key and trusted-root files named relative to trust.json are
		// inlined: the sealed document is what is verified with.
		if data, err = trust.Resolve(data, filepath.Dir(path)); err != nil {
			return Doc{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	return Doc{Name: path, Present: true, Data: data}, nil
}

// records reads every *.json file directly in the registry directory, in
// file-name order; one that cannot be read is returned with its error.
func (f *fileSource) records() ([]RecordDoc, error) {
	entries, err := os.ReadDir(f.registry)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var out []RecordDoc
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		path := filepath.Join(f.registry, e.Name())
		data, err := os.ReadFile(path)
		out = append(out, RecordDoc{Name: path, Data: data, Err: err})
	}
	return out, nil
}

func (f *fileSource) Put(_ context.Context, kind DocKind, data []byte, ifMatch string) error {
	path, _, _, err := f.path(kind)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ifMatch != "" {
		cur, err := f.read(kind)
		if errors.Is(err, fs.ErrNotExist) {
			cur, err = Doc{Name: path}, nil // a named file not created yet
		}
		if err != nil {
			return err
		}
		if err := CheckIfMatch(cur, ifMatch); err != nil {
			return err
		}
	}
	if data == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return fsutil.WriteFileAtomic(path, data, 0o644)
}

func (f *fileSource) PutRecord(_ context.Context, workerID string, data []byte) (string, error) {
	if workerID == "" || workerID == "." || workerID == ".." || strings.ContainsAny(workerID, `/\`+"\x00") {
		return "", fmt.Errorf("enrolled record: worker id %q cannot name a file in %s; give a valid worker id", workerID, f.registry)
	}
	name := filepath.Join(f.registry, workerID+".json")
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.MkdirAll(f.registry, 0o755); err != nil {
		return name, err
	}
	return name, fsutil.WriteFileAtomic(name, data, 0o644)
}

// Watch follows the files with fsnotify.
//
// # Notes
//
//   - The parent directories are watched, not the files: editors and
//     fsutil.WriteFileAtomic replace a file by renaming another over it,
//     which a watch on the old file would miss. The registry directory is
//     watched from the moment it appears (before notify reports its
//     creation, so a Load after that call reads what it was given).
//   - Only the directories holding the rules and the configuration must
//     exist.
func (f *fileSource) Watch(ctx context.Context, notify func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	t := newWatchTargets([]string{f.rules, f.config, f.policy, f.trust}, []string{f.registry}, nil,
		filepath.Dir(f.rules), filepath.Dir(f.config))
	if err := t.add(w); err != nil {
		return err
	}
	notify(nil)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if t.relevant(ev) {
				err := t.add(w) // a directory that appeared is watched from now on
				notify(err)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: anything may have changed.
			notify(fmt.Errorf("watch: %w", err))
		}
	}
}
