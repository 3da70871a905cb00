package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
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

// Watch reloads the Hall (see Reload) whenever its snapshot source
// reports a change (SnapshotSource.Watch: for the files of Options, the
// rules file, the configuration file, the policy file and the enrolled
// records, *.json in RegistryDir) and whenever the artifact store changes
// on disk. Each snapshot a reload installs is recorded in the change
// chain, actor "file", before the first decision under it, however
// quickly the documents change: a generation that decides nothing is not
// recorded, one that decides is, first. It returns nil when ctx is done,
// or an error when the watch cannot start or stops, or the Hall is
// closed.
//
//	go h.Watch(ctx, func(err error) { log.Print(err) })
//
// report receives every reload that failed (the snapshot in force keeps
// serving), every problem a reload found that was not there before (an
// enrolled record that no longer validates or no longer matches its
// seal) and every warning of the source that changes may have been
// missed (a reload follows); it is called from Watch's goroutine, one
// call at a time.
//
// # Notes
//
//   - Notifications are debounced: a reload happens once the source has
//     been quiet for 100 ms (or 1 s after the first change, when changes
//     keep coming). Watch also reloads once when the source first says it
//     is watching, so that a change made between Open and Watch is not
//     missed. A change the Hall made itself (Enroll, ReplaceRules) also
//     triggers a reload, which finds what is already in force and changes
//     nothing.
//   - The files of Options are followed through their parent
//     directories, not the files themselves: editors and atomic writers
//     replace a file by renaming another over it, which a watch on the
//     old file would miss. The registry directory is watched from the
//     moment it appears.
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

	store := filepath.Join(h.opts.Home, "artifacts")
	t := newWatchTargets(nil, nil, []string{filepath.Clean(store), filepath.Join(store, "sha256")})
	// The artifact store is created now, so that the watch covers it
	// before the first module is stored.
	if _, err := h.artifacts(); err != nil {
		report(fmt.Errorf("watch: the artifact store: %w", err))
	}
	if err := t.add(w); err != nil {
		return err
	}

	// The source's notifications: changed is signalled (coalesced), and
	// warnings queue until this goroutine reports them.
	var (
		mu       sync.Mutex
		warnings []error
	)
	changed := make(chan struct{}, 1)
	notify := func(err error) {
		if err != nil {
			mu.Lock()
			warnings = append(warnings, err)
			mu.Unlock()
		}
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	sctx, stop := context.WithCancel(ctx)
	srcDone := make(chan error, 1)
	go func() { srcDone <- h.src.Watch(sctx, notify) }()
	defer func() {
		stop()
		if srcDone != nil {
			<-srcDone
		}
	}()

	known := problemSet(h.Problems())
	// The first reload comes once the source says it is watching (its
	// first notification): a change made between Open and then was seen
	// by no watch.
	timer := time.NewTimer(watchQuiet)
	timer.Stop()
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
		case err := <-srcDone:
			srcDone = nil
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("watch: the snapshot source stopped watching before the watch ended")
			}
			return err
		case <-changed:
			mu.Lock()
			warn := warnings
			warnings = nil
			mu.Unlock()
			for _, err := range warn {
				report(err)
			}
			settle()
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
			// A store directory that appeared is watched from now on;
			// the reload below reads whatever it was given before.
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

// watchTargets are the files and directories an fsnotify watch follows.
type watchTargets struct {
	files    []string // a change to one of these is relevant
	jsonDirs []string // so is a change to a *.json file in one of these
	anyDirs  []string // and to anything in one of these
	dirs     []string // what is watched: the parents and the directories
	required []string // the directories that must exist
}

// newWatchTargets watches the parents of files, jsonDirs and anyDirs.
func newWatchTargets(files, jsonDirs, anyDirs []string, required ...string) *watchTargets {
	t := &watchTargets{}
	clean := func(l []string) []string {
		out := make([]string, len(l))
		for i, p := range l {
			out[i] = filepath.Clean(p)
		}
		return out
	}
	t.files, t.jsonDirs, t.anyDirs, t.required = clean(files), clean(jsonDirs), clean(anyDirs), clean(required)
	var all []string
	for _, f := range t.files {
		all = append(all, filepath.Dir(f))
	}
	for _, d := range t.jsonDirs {
		all = append(all, filepath.Dir(d), d)
	}
	all = append(all, t.anyDirs...)
	for _, d := range all {
		if !slices.Contains(t.dirs, d) {
			t.dirs = append(t.dirs, d)
		}
	}
	return t
}

// add watches every target directory that exists and is not watched yet.
// Only the required directories must exist; any other is added when it
// appears.
func (t *watchTargets) add(w *fsnotify.Watcher) error {
	watched := w.WatchList()
	for _, d := range t.dirs {
		if slices.Contains(watched, d) {
			continue
		}
		if err := w.Add(d); err != nil && slices.Contains(t.required, d) {
			return fmt.Errorf("watch: %w", err)
		}
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
	case slices.Contains(t.files, name):
		return true
	case slices.Contains(t.jsonDirs, name), slices.Contains(t.anyDirs, name):
		return true // created, removed or renamed: (re)watched
	case slices.Contains(t.jsonDirs, dir):
		return filepath.Ext(name) == ".json"
	case slices.Contains(t.anyDirs, dir):
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
