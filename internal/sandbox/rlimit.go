package sandbox

import "fmt"

// addressSpaceLimitGap returns why a compiler child cannot limit its own
// address space on goos/goarch, or nil where it can (linux, RLIMIT_AS).
//
// Why: macOS accepts setrlimit(RLIMIT_AS) but does not enforce it, and
// Windows has no per-process address-space limit a process sets on
// itself; a compiler child there would compile a hostile module with no
// bound at all. It is refused instead, with the reason.
func addressSpaceLimitGap(goos, goarch string) error {
	if goos == "linux" {
		return nil
	}
	return fmt.Errorf("sandbox: CompileCommand: the compiler child's address-space limit (RLIMIT_AS) is not enforced on %s/%s, so it is not started; compile in process (Options.Compiler nil) or run the Hall on linux", goos, goarch)
}
