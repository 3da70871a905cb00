package sandbox

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
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
}

// mountFS builds the guest filesystem for a Policy: Writes read-write and
// Reads read-only, each at its own absolute host path; nothing else exists.
// The returned closer releases the os.Root handles.
func mountFS(p Policy) (wazero.FSConfig, func(), error) {
	var roots []*os.Root
	closeAll := func() {
		for _, r := range roots {
			_ = r.Close()
		}
	}
	cfg := wazero.NewFSConfig()
	add := func(dir string, readOnly bool) error {
		r, err := os.OpenRoot(dir)
		if err != nil {
			return err
		}
		roots = append(roots, r)
		cfg = cfg.(sysfs.FSConfig).WithSysFSMount(&rootFS{root: r, readOnly: readOnly}, dir)
		return nil
	}
	for _, d := range p.Writes {
		if err := add(d, false); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	for _, d := range p.Reads {
		if err := add(d, true); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	return cfg, closeAll, nil
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
	f, err := r.root.OpenFile(p, of, perm&fs.ModePerm)
	if err != nil {
		return nil, errno(err)
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
	return &rootFile{File: adapted, f: f, st: sys.NewStat_t(st), append: flag&experimentalsys.O_APPEND != 0, readOnly: r.readOnly}, 0
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
	return errno(r.root.Mkdir(rel(name), perm&fs.ModePerm))
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
	return errno(r.root.Remove(p))
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
	return errno(r.root.Remove(p))
}

// Link implements experimentalsys.FS. Both names resolve inside the root, so a
// hard link can only alias a file the worker could already reach.
func (r *rootFS) Link(oldName, newName string) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	return errno(r.root.Link(rel(oldName), rel(newName)))
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
	if f.append {
		if _, err := f.f.Seek(0, io.SeekEnd); err != nil {
			return 0, errno(err)
		}
	}
	n, err := f.f.Write(buf)
	return n, errno(err)
}

func (f *rootFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if f.readOnly {
		return 0, experimentalsys.EBADF
	}
	n, err := f.f.WriteAt(buf, off)
	return n, errno(err)
}

func (f *rootFile) Truncate(size int64) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EBADF
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
