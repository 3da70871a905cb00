package host

import (
	"fmt"
	"runtime"
)

// platformGap returns why the Hall refuses to open a state directory on
// goos, or nil where every protection it relies on is enforced.
//
// Why: the Hall's state (the evidence ledger, the signing key, the
// tokens) is protected by Unix permission bits (prepareStateDir: 0700
// directories, 0600 files; the key is refused when group or others can
// read it), the artifact store's "unchanged since hashed" check reads the
// inode change time, and the write quota counts hard links. On Windows
// none of these hold (access is by ACL, which os.Chmod does not set; Go
// reports every writable file as 0666, so no key would load either), and
// the compiler child's address-space limit does not exist. A Hall there
// would run with its evidence readable by any local user; it refuses
// instead, saying so. Platforms that are neither Unix nor Windows (plan9,
// js, wasip1) are refused for the same reason.
func platformGap(goos string) error {
	switch goos {
	case "windows":
		return fmt.Errorf("the Hall does not run on windows: its state directory and signing key are protected by Unix permission bits (0700/0600), which windows does not enforce (it uses ACLs), and the compiler child's address-space limit has no equivalent; run it on linux (amd64 or arm64)")
	case "plan9", "js", "wasip1":
		return fmt.Errorf("the Hall does not run on %s: its state directory needs Unix permission bits (0700/0600); run it on linux (amd64 or arm64)", goos)
	}
	return nil
}

// checkPlatform is platformGap for the running platform.
func checkPlatform() error { return platformGap(runtime.GOOS) }
