//go:build !wasip1

package sdk

import "embed"

// Source is this package's own Go source: every .go file of the package,
// tests included, at the version the importing program was built with.
// It exists for tools that copy the SDK into a worker's module so that the
// worker builds offline and anywhere (hall new writes it under
// third_party/hall/sdk) while the module is not published.
//
// # Notes
//
// Source is only compiled outside GOOS=wasip1: workers built with the SDK
// do not carry it.
//
//go:embed *.go
var Source embed.FS
