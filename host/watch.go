package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchQuiet is how long the files must stay quiet before a reload: an
// editor's save, `hall enroll` (module, seal, record, rules) or a deploy
// that copies several files is a burst of events that should cost one
// reload, not one per event.
const watchQuiet = 100 * time.Millisecond

// watchMaxDelay bounds how long a stream of changes can postpone a reload.
const watchMaxDelay = time.Second

// Watch reloads the Hall (see Reload) whenever the files it was opened
// from change on disk: the rules file, the configuration file, the policy
// file, the enrolled records (*.json in RegistryDir) and the artifact
// store. Each snapshot a reload installs is recorded in the change chain,
// actor "file", before the first decision under it, however quickly the
// files change: a generation that decides nothing is not recorded, one
// that decides is, first. It
// returns nil when ctx is done, or an error when the watch cannot start
// or the Hall is closed.
//
//	go h.Watch(ctx, func(err error) { log.Print(err) })
//
// report receives every reload that failed (the snapshot in force keeps
// serving) and every problem a reload found that was not there before (an
// enrolled record that no longer validates or no longer matches its seal);
// it is called from Watch's goroutine, one call at a time.
//
// # Notes
//
//   - The parent directories are watched, not the files: editors and
//     fsutil.WriteFileAtomic replace a file by renaming another over it,
//     which a watch on the old file would miss. The registry directory is
//     watched from the moment it appears.
//   - Events are debounced: a reload happens once the files have been
//     quiet for 100 ms (or 1 s after the first change, when changes keep
//     coming). Watch also reloads once when it starts, so that a
//     change made between Open and Watch is not missed. A change the Hall made itself (Enroll,
//     ReplaceRules) also triggers a reload, which finds what is already
//     in force and changes nothing.
//   - The Hall's own state directory (the ledger and its WAL) is not
//     watched, only its artifacts, so dispatches do not cause reloads.
func (h *Hall) Watch(ctx context.Context, report func(error)) error {
	if h.isClosed() {
		return ErrClosed
	}
	if report == nil {
		report = func(error) {}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()

	t := h.watchTargets()
	// The artifact store is created now, so that the watch covers it
	// before the first module is stored.
	if _, err := h.artifacts(); err != nil {
		report(fmt.Errorf("watch: the artifact store: %w", err))
	}
	if err := t.add(w); err != nil {
		return err
	}

	known := problemSet(h.Problems())
	// The first reload comes once the watches are in place: a change
	// made between Open and now was seen by no watch.
	timer := time.NewTimer(watchQuiet)
	defer timer.Stop()
	// pending is when the first change not yet reloaded was seen: a file
	// rewritten more often than the quiet period (a busy writer) must not
	// postpone the reload for ever, so it comes at most watchMaxDelay
	// after that first change.
	var pending time.Time
	settle := func() {
		if pending.IsZero() {
			pending = time.Now()
		}
		timer.Reset(min(watchQuiet, max(0, watchMaxDelay-time.Since(pending))))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if t.relevant(ev) {
				settle()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: reload, since anything may
			// have changed.
			report(fmt.Errorf("watch: %w", err))
			settle()
		case <-timer.C:
			pending = time.Time{}
			// A directory that appeared (the registry on the first
			// enrollment) is watched from now on; the reload below
			// reads whatever it was given before.
			if err := t.add(w); err != nil {
				report(err)
			}
			if err := h.Reload(ctx); err != nil {
				if errors.Is(err, ErrClosed) {
					return err
				}
				if ctx.Err() != nil {
					return nil
				}
				report(fmt.Errorf("reload after a change on disk: %w", err))
				continue
			}
			now := problemSet(h.Problems())
			for _, p := range now.list {
				if !known.has[p.Error()] {
					report(p)
				}
			}
			known = now
		}
	}
}

// watchTargets are the files and directories Watch follows.
type watchTargets struct {
	rules, config string
	policy        string // policy.json (docs/POLICY.md)
	registry      string
	artifacts     []string // the store and its sha256/ directory
	dirs          []string // what is watched: the parents, the registry, the store
}

func (h *Hall) watchTargets() *watchTargets {
	cfg := h.opts.ConfigFile
	if cfg == "" {
		cfg = "hall.json"
	}
	store := filepath.Join(h.opts.Home, "artifacts")
	t := &watchTargets{
		rules:     filepath.Clean(h.opts.Rules),
		config:    filepath.Clean(h.opts.path(cfg)),
		policy:    filepath.Clean(h.PolicyFile()),
		registry:  filepath.Clean(h.opts.RegistryDir),
		artifacts: []string{filepath.Clean(store), filepath.Join(store, "sha256")},
	}
	for _, d := range append([]string{filepath.Dir(t.rules), filepath.Dir(t.config), filepath.Dir(t.policy), filepath.Dir(t.registry), t.registry}, t.artifacts...) {
		if !slices.Contains(t.dirs, d) {
			t.dirs = append(t.dirs, d)
		}
	}
	return t
}

// add watches every target directory that exists and is not watched yet.
// Only the directories holding the rules and the configuration must exist
// (the Hall was opened from them).
func (t *watchTargets) add(w *fsnotify.Watcher) error {
	watched := w.WatchList()
	for _, d := range t.dirs {
		if slices.Contains(watched, d) {
			continue
		}
		if err := w.Add(d); err != nil && (d == filepath.Dir(t.rules) || d == filepath.Dir(t.config)) {
			return fmt.Errorf("watch: %w", err)
		}
		// Any other directory that does not exist yet is added when it
		// appears.
	}
	return nil
}

// relevant says whether an event may change what a reload reads.
func (t *watchTargets) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	dir := filepath.Dir(name)
	switch {
	case name == t.rules, name == t.config, name == t.policy:
		return true
	case name == t.registry, slices.Contains(t.artifacts, name):
		return true // created, removed or renamed: (re)watched at the reload
	case dir == t.registry:
		return filepath.Ext(name) == ".json"
	case slices.Contains(t.artifacts, dir):
		return true
	}
	return false
}

// problems is a Problems() error split into its reports.
type problems struct {
	list []error
	has  map[string]bool
}

func problemSet(err error) problems {
	p := problems{has: map[string]bool{}}
	if err == nil {
		return p
	}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok { // errors.Join, nested
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if e != nil && !p.has[e.Error()] {
			p.has[e.Error()] = true
			p.list = append(p.list, e)
		}
	}
	walk(err)
	return p
}
