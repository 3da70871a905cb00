package sandbox

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// rootFS is a wazero experimental sys.FS confined to one host directory by
// os.Root: every path the guest names, including symlinks already in the tree
// and "..", is resolved inside the root or refused.
//
// Why not wazero's WithDirMount (and so not Extism AllowedPaths): its
// directory mounts follow symlinks, so a guest with a writable mount can
// create "x -> ../../etc" and escape. rootFS also refuses to create symlinks
// at all, so a worker cannot plant one for a later host process to follow.
type rootFS struct {
	root     *os.Root
	readOnly bool
	quota    *writeQuota // nil for read-only mounts
}

// mountFS builds the guest filesystem for a Policy: Writes read-write and
// Reads read-only, each at its own absolute host path; nothing else exists.
// The write directories share one quota of lim.WriteBytes and
// lim.WriteFiles (nil without write directories). The returned closer
// releases the os.Root handles.
func mountFS(p Policy, lim Limits) (wazero.FSConfig, *writeQuota, func(), error) {
	var roots []*os.Root
	closeAll := func() {
		for _, r := range roots {
			_ = r.Close()
		}
	}
	var quota *writeQuota
	if len(p.Writes) > 0 {
		quota = &writeQuota{maxBytes: lim.WriteBytes, maxFiles: lim.WriteFiles}
	}
	cfg := wazero.NewFSConfig()
	add := func(dir string, readOnly bool) error {
		r, err := os.OpenRoot(dir)
		if err != nil {
			return err
		}
		roots = append(roots, r)
		fsys := &rootFS{root: r, readOnly: readOnly}
		if !readOnly {
			fsys.quota = quota
			quota.count(r)
		}
		cfg = cfg.(sysfs.FSConfig).WithSysFSMount(fsys, dir)
		return nil
	}
	for _, d := range p.Writes {
		if err := add(d, false); err != nil {
			closeAll()
			return nil, nil, nil, err
		}
	}
	for _, d := range p.Reads {
		if err := add(d, true); err != nil {
			closeAll()
			return nil, nil, nil, err
		}
	}
	return cfg, quota, closeAll, nil
}

// writeQuota bounds what a worker keeps in its write directories: bytes in
// regular files and entries (files and directories), counted from what the
// directories hold when the worker is loaded.
//
// Why: a worker filled the disk its write directory shared with the
// ledger; its own receipt could not be committed and every later dispatch
// of every tenant failed. A write that would pass the quota fails with EIO
// (WASI preview 1 has no ENOSPC in wazero's errno set) and the call's
// outcome is LIMIT_DISK.
//
// # Notes
//
//   - The count is the Hall's own bookkeeping of what the worker does
//     through this filesystem; another process writing the same
//     directories is not seen until the worker is loaded again. Concurrent
//     calls of one worker share the quota.
type writeQuota struct {
	maxBytes, maxFiles int64
	mu                 sync.Mutex
	bytes, files       int64
	// hits counts refused writes; Worker.Call compares it around a call.
	hits atomic.Int64
}

// count adds what the directory under r already holds.
func (q *writeQuota) count(r *os.Root) {
	_ = fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return nil
		}
		q.files++
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				q.bytes += fi.Size()
			}
		}
		return nil
	})
}

// reserve takes bytes and files from the quota, or refuses and records a
// hit. Negative amounts give back.
func (q *writeQuota) reserve(bytes, files int64) bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if (bytes > 0 && q.bytes+bytes > q.maxBytes) || (files > 0 && q.files+files > q.maxFiles) {
		q.hits.Add(1)
		return false
	}
	q.bytes = max(q.bytes+bytes, 0)
	q.files = max(q.files+files, 0)
	return true
}

// blocking reports file types whose open or read can block the host
// thread without regard to the call's deadline (a FIFO without a writer),
// or reach a device: never opened for a guest.
func blocking(m fs.FileMode) bool {
	return m&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice|fs.ModeIrregular) != 0
}

// rel turns the mount-relative path wazero passes into a relative path for
// os.Root. ".." is left in place: os.Root resolves it inside the tree and
// refuses it when it would leave the root.
func rel(name string) string {
	name = strings.TrimLeft(name, "/")
	if name == "" {
		return "."
	}
	return path.Clean(name)
}

func errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return experimentalsys.UnwrapOSError(err)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return experimentalsys.ENOENT
	case errors.Is(err, fs.ErrExist):
		return experimentalsys.EEXIST
	case errors.Is(err, fs.ErrPermission):
		return experimentalsys.EPERM
	}
	// os.Root reports "path escapes from parent" without an errno.
	return experimentalsys.EPERM
}

const writeFlags = experimentalsys.O_WRONLY | experimentalsys.O_RDWR | experimentalsys.O_APPEND |
	experimentalsys.O_CREAT | experimentalsys.O_TRUNC | experimentalsys.O_EXCL

// OpenFile implements experimentalsys.FS.
func (r *rootFS) OpenFile(name string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if r.readOnly && flag&writeFlags != 0 {
		return nil, experimentalsys.EROFS
	}
	p := rel(name)
	if flag&experimentalsys.O_NOFOLLOW != 0 {
		if st, err := r.root.Lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
	}
	existed := true
	if st, err := r.root.Stat(p); err == nil {
		if blocking(st.Mode()) {
			return nil, experimentalsys.EACCES
		}
	} else {
		existed = false
	}
	created := false
	if !existed && flag&experimentalsys.O_CREAT != 0 {
		if !r.quota.reserve(0, 1) {
			return nil, experimentalsys.EIO
		}
		created = true
	}
	var of int
	switch {
	case flag&experimentalsys.O_RDWR != 0:
		of = os.O_RDWR
	case flag&experimentalsys.O_WRONLY != 0:
		of = os.O_WRONLY
	default:
		of = os.O_RDONLY
	}
	if flag&experimentalsys.O_APPEND != 0 {
		of |= os.O_APPEND
	}
	if flag&experimentalsys.O_CREAT != 0 {
		of |= os.O_CREATE
	}
	if flag&experimentalsys.O_EXCL != 0 {
		of |= os.O_EXCL
	}
	if flag&experimentalsys.O_TRUNC != 0 {
		of |= os.O_TRUNC
	}
	if flag&(experimentalsys.O_SYNC|experimentalsys.O_DSYNC|experimentalsys.O_RSYNC) != 0 {
		of |= os.O_SYNC
	}
	var truncated int64
	if existed && flag&experimentalsys.O_TRUNC != 0 && r.quota != nil {
		if st, err := r.root.Stat(p); err == nil && st.Mode().IsRegular() {
			truncated = st.Size()
		}
	}
	f, err := r.root.OpenFile(p, of, perm&fs.ModePerm)
	if err != nil {
		if created {
			r.quota.reserve(0, -1)
		}
		return nil, errno(err)
	}
	if truncated > 0 {
		r.quota.reserve(-truncated, 0)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, errno(err)
	}
	if flag&experimentalsys.O_DIRECTORY != 0 && !st.IsDir() {
		_ = f.Close()
		return nil, experimentalsys.ENOTDIR
	}
	// wazero's fs.FS adapter supplies Seek and Readdir (including the
	// directory rewind, which reopens through the same os.Root).
	adapted, en := (&sysfs.AdaptFS{FS: &openedFS{f: f, root: r.root}}).OpenFile(p, experimentalsys.O_RDONLY, 0)
	if en != 0 {
		_ = f.Close()
		return nil, en
	}
	return &rootFile{File: adapted, f: f, st: sys.NewStat_t(st), append: flag&experimentalsys.O_APPEND != 0, readOnly: r.readOnly, quota: r.quota}, 0
}

// openedFS hands wazero's adapter the file rootFS already opened, and opens
// again (read-only, inside the root) only when a directory is rewound.
type openedFS struct {
	f    *os.File
	root *os.Root
	used bool
}

func (o *openedFS) Open(name string) (fs.File, error) {
	if !o.used {
		o.used = true
		return o.f, nil
	}
	return o.root.Open(name)
}

// Lstat implements experimentalsys.FS.
func (r *rootFS) Lstat(name string) (sys.Stat_t, experimentalsys.Errno) {
	st, err := r.root.Lstat(rel(name))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(st), 0
}

// Stat implements experimentalsys.FS.
func (r *rootFS) Stat(name string) (sys.Stat_t, experimentalsys.Errno) {
	st, err := r.root.Stat(rel(name))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(st), 0
}

// Mkdir implements experimentalsys.FS.
func (r *rootFS) Mkdir(name string, perm fs.FileMode) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	if !r.quota.reserve(0, 1) {
		return experimentalsys.EIO
	}
	if err := r.root.Mkdir(rel(name), perm&fs.ModePerm); err != nil {
		r.quota.reserve(0, -1)
		return errno(err)
	}
	return 0
}

// Chmod implements experimentalsys.FS.
func (r *rootFS) Chmod(name string, perm fs.FileMode) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	return errno(r.root.Chmod(rel(name), perm&fs.ModePerm))
}

// Rename implements experimentalsys.FS.
func (r *rootFS) Rename(from, to string) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	return errno(r.root.Rename(rel(from), rel(to)))
}

// Rmdir implements experimentalsys.FS.
func (r *rootFS) Rmdir(name string) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	p := rel(name)
	if p == "." {
		return experimentalsys.EPERM
	}
	st, err := r.root.Lstat(p)
	if err != nil {
		return errno(err)
	}
	if !st.IsDir() {
		return experimentalsys.ENOTDIR
	}
	if err := r.root.Remove(p); err != nil {
		return errno(err)
	}
	r.quota.reserve(0, -1)
	return 0
}

// Unlink implements experimentalsys.FS.
func (r *rootFS) Unlink(name string) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	p := rel(name)
	st, err := r.root.Lstat(p)
	if err != nil {
		return errno(err)
	}
	if st.IsDir() {
		return experimentalsys.EISDIR
	}
	if err := r.root.Remove(p); err != nil {
		return errno(err)
	}
	if r.quota != nil {
		var size int64
		if st.Mode().IsRegular() && linkCount(st) <= 1 {
			size = st.Size()
		}
		r.quota.reserve(-size, -1)
	}
	return 0
}

// Link implements experimentalsys.FS. Both names resolve inside the root, so a
// hard link can only alias a file the worker could already reach.
func (r *rootFS) Link(oldName, newName string) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	if !r.quota.reserve(0, 1) {
		return experimentalsys.EIO
	}
	if err := r.root.Link(rel(oldName), rel(newName)); err != nil {
		r.quota.reserve(0, -1)
		return errno(err)
	}
	return 0
}

// Symlink implements experimentalsys.FS: always refused (see rootFS).
func (r *rootFS) Symlink(string, string) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	return experimentalsys.EPERM
}

// Readlink implements experimentalsys.FS.
func (r *rootFS) Readlink(name string) (string, experimentalsys.Errno) {
	s, err := r.root.Readlink(rel(name))
	if err != nil {
		return "", errno(err)
	}
	return s, 0
}

// Utimens implements experimentalsys.FS.
func (r *rootFS) Utimens(name string, atim, mtim int64) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	p := rel(name)
	at, mt, en := resolveTimes(func() (fs.FileInfo, error) { return r.root.Stat(p) }, atim, mtim)
	if en != 0 {
		return en
	}
	return errno(r.root.Chtimes(p, at, mt))
}

func resolveTimes(stat func() (fs.FileInfo, error), atim, mtim int64) (time.Time, time.Time, experimentalsys.Errno) {
	pick := func(v int64, cur func(sys.Stat_t) int64, st *sys.Stat_t) time.Time {
		switch v {
		case experimentalsys.UTIME_OMIT:
			return time.Unix(0, cur(*st))
		}
		return time.Unix(0, v)
	}
	var st sys.Stat_t
	if atim == experimentalsys.UTIME_OMIT || mtim == experimentalsys.UTIME_OMIT {
		fi, err := stat()
		if err != nil {
			return time.Time{}, time.Time{}, errno(err)
		}
		st = sys.NewStat_t(fi)
	}
	return pick(atim, func(s sys.Stat_t) int64 { return s.Atim }, &st),
		pick(mtim, func(s sys.Stat_t) int64 { return s.Mtim }, &st), 0
}

// rootFile is an open file or directory of a rootFS.
//
// Seek and Readdir come from the embedded wazero adapter: declaring a Seek
// that returns sys.Errno here would trip go vet's stdmethods check.
type rootFile struct {
	experimentalsys.File
	f        *os.File
	st       sys.Stat_t
	append   bool
	readOnly bool
	quota    *writeQuota
}

// grow takes from the quota what writing n bytes at off (or at the end,
// for appends) adds to the file's size.
func (f *rootFile) grow(off int64, n int) bool {
	if f.quota == nil || n == 0 {
		return true
	}
	st, err := f.f.Stat()
	if err != nil {
		return true
	}
	if off < 0 {
		off = st.Size()
	}
	if extra := off + int64(n) - st.Size(); extra > 0 {
		return f.quota.reserve(extra, 0)
	}
	return true
}

func (f *rootFile) Dev() (uint64, experimentalsys.Errno)    { return f.st.Dev, 0 }
func (f *rootFile) Ino() (sys.Inode, experimentalsys.Errno) { return f.st.Ino, 0 }
func (f *rootFile) IsDir() (bool, experimentalsys.Errno)    { return f.st.Mode.IsDir(), 0 }
func (f *rootFile) IsAppend() bool                          { return f.append }

// SetAppend implements experimentalsys.File. The flag is applied by seeking
// to the end before each Write.
func (f *rootFile) SetAppend(enable bool) experimentalsys.Errno {
	f.append = enable
	return 0
}

func (f *rootFile) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if f.st.Mode.IsDir() {
		return f.File.Stat() // the adapter may have reopened it
	}
	st, err := f.f.Stat()
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(st), 0
}

func (f *rootFile) Read(buf []byte) (int, experimentalsys.Errno) {
	if f.st.Mode.IsDir() {
		return 0, experimentalsys.EISDIR
	}
	n, err := f.f.Read(buf)
	if err == io.EOF {
		err = nil
	}
	return n, errno(err)
}

func (f *rootFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if f.st.Mode.IsDir() {
		return 0, experimentalsys.EISDIR
	}
	n, err := f.f.ReadAt(buf, off)
	if err == io.EOF {
		err = nil
	}
	return n, errno(err)
}

func (f *rootFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if f.readOnly {
		return 0, experimentalsys.EBADF
	}
	if f.st.Mode.IsDir() {
		return 0, experimentalsys.EISDIR
	}
	off := int64(-1)
	if f.append {
		if _, err := f.f.Seek(0, io.SeekEnd); err != nil {
			return 0, errno(err)
		}
	} else if cur, err := f.f.Seek(0, io.SeekCurrent); err == nil {
		off = cur
	}
	if !f.grow(off, len(buf)) {
		return 0, experimentalsys.EIO
	}
	n, err := f.f.Write(buf)
	return n, errno(err)
}

func (f *rootFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if f.readOnly {
		return 0, experimentalsys.EBADF
	}
	if !f.grow(off, len(buf)) {
		return 0, experimentalsys.EIO
	}
	n, err := f.f.WriteAt(buf, off)
	return n, errno(err)
}

func (f *rootFile) Truncate(size int64) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EBADF
	}
	if f.quota != nil {
		if st, err := f.f.Stat(); err == nil {
			if !f.quota.reserve(size-st.Size(), 0) {
				return experimentalsys.EIO
			}
		}
	}
	return errno(f.f.Truncate(size))
}

func (f *rootFile) Sync() experimentalsys.Errno     { return errno(f.f.Sync()) }
func (f *rootFile) Datasync() experimentalsys.Errno { return errno(f.f.Sync()) }

// Utimens implements experimentalsys.File. Refused: os.File.Name of a file
// opened through os.Root is root-relative, so a path-based chtimes would be
// resolved against the host's working directory. Guests set times by path
// (rootFS.Utimens) instead.
func (f *rootFile) Utimens(int64, int64) experimentalsys.Errno { return experimentalsys.ENOSYS }

func (f *rootFile) Close() experimentalsys.Errno { return f.File.Close() }
