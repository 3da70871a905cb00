package sandbox

import (
	"context"
	"log/slog"

	extism "github.com/extism/go-sdk"
)

// LevelTrace is the slog level of a guest's Extism log_trace lines, below
// slog.LevelDebug.
const LevelTrace = slog.LevelDebug - 4

// guestLevel maps an Extism log level onto the Engine's log: trace below
// debug, then debug, info, warn and error as named.
func guestLevel(l extism.LogLevel) slog.Level {
	switch l {
	case extism.LogLevelTrace:
		return LevelTrace
	case extism.LogLevelDebug:
		return slog.LevelDebug
	case extism.LogLevelWarn:
		return slog.LevelWarn
	case extism.LogLevelError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// guestLog passes one guest log_* line to the Engine's log at its mapped
// level, with the worker and the correlation id of the call it came from.
//
// # Notes
//
//   - Extism's own level filter (extism.SetLogLevel, a process global)
//     runs first: a line it drops never gets here, nor into Result.Logs.
//   - Extism's "Calling function" and runtime start-up lines are the
//     host's, not the guest's, and are logged at debug like any other.
func (w *Worker) guestLog(in *instance, level extism.LogLevel, msg string) {
	lvl := guestLevel(level)
	ctx := context.Background()
	if !w.eng.log.Enabled(ctx, lvl) {
		return
	}
	corr := ""
	if p := in.correlation.Load(); p != nil {
		corr = *p
	}
	w.eng.log.Log(ctx, lvl, "sandbox: guest log", "worker", w.name, "correlation_id", corr, "message", msg)
}
