package sandbox

import "github.com/tetratelabs/wazero"

// Guest code outside a call (issue 21)
//
// A caller (the Hall) records the decision that names a dispatch before it
// calls Worker.Call; nothing that runs before that may hold a grant. Guest
// code runs outside a call in one place only: a module's start section,
// which wazero runs at every instantiation, and instances are made outside
// a call by Load (the instantiation that proves the module loads) and by
// the pool refiller. So:
//
//   - Host functions (hall_secret, hall_http, hall_emit, Extism's
//     http_request) serve only a call: outside one they trap (stateOf).
//     Extism's config_get reads the config of the call (Request.Config);
//     outside a call there is no plugin in the context and it traps. A
//     start section therefore never reaches egress, secrets or config.
//   - The mounts are the one grant an instance holds from its
//     instantiation (ModuleConfig). A module with a start section is
//     instantiated outside a call without them (bareCfg), and if it has
//     any grant at all (mounts, egress, secrets) no instance of it is made
//     ahead of a call (callOnly): Load's instance is discarded and the
//     pool stays empty, so every call instantiates on its own deadline and
//     its start section runs inside the call, under its decision.
//   - A module without a start section runs no guest code when it is
//     instantiated, so it is pre-instantiated with its mounts as before.
//     A WASI reactor's _initialize (standard-Go and Rust modules) is not a
//     start section: Extism runs it at the first call of an instance,
//     inside that call (RATIONALE.md, "Guest code outside a call").

// grants reports whether p grants anything outside the instance: a mount,
// egress or a secret.
func (p Policy) grants() bool {
	return len(p.Writes) > 0 || len(p.Reads) > 0 || len(p.Egress) > 0 || len(p.Secrets) > 0
}

// instanceConfig is the module config of a new instance: with the mounts
// inside a call, or when the module has no start section (instantiating it
// runs no guest code); without them otherwise.
func (w *Worker) instanceConfig(inCall bool) wazero.ModuleConfig {
	if inCall || !w.hasStart {
		return w.modCfg
	}
	return w.bareCfg
}
