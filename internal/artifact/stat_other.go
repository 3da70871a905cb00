//go:build !linux && !darwin && !freebsd && !netbsd

package artifact

import "io/fs"

// changeTime reports no change time: on this platform the store hashes a
// module on every read (fileID).
func changeTime(fs.FileInfo) (dev, ino uint64, ctime int64, ok bool) {
	return 0, 0, 0, false
}
