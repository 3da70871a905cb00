// Package devenv holds no code: its tests check the development
// environment the README promises, as a newcomer's fresh machine would see
// it — `make test`'s preflight (scripts/preflight) on a machine where the
// system programs are missing, and the Go tools pinned in go.mod running
// with nothing installed.
package devenv
