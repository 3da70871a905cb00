package sandbox

import "os"

func chmod(p string, m os.FileMode) error { return os.Chmod(p, m) }
