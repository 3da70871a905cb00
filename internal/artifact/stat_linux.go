package artifact

import (
	"io/fs"
	"syscall"
)

// changeTime returns fi's device, inode and inode change time (ns).
func changeTime(fi fs.FileInfo) (dev, ino uint64, ctime int64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec), true
}
