//go:build !wasip1

package sdk

import (
	"embed"
	"io/fs"
)

//go:embed *.go
var source embed.FS

// Source returns this package's own Go source: every .go file of the
// package, tests included, at the version the importing program was built
// with. It exists for tools that copy the SDK into a worker's module so
// that the worker builds offline and anywhere (hall new writes it under
// third_party/hall/sdk) while the module is not published.
//
// # Notes
//
// Source is only compiled outside GOOS=wasip1: workers built with the SDK
// do not carry it. The file system is read-only.
func Source() fs.FS { return source }
