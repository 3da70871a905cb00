package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	extism "github.com/extism/go-sdk"
)

// Per-call bounds of hall_emit (docs/ABI.md: RATE_LIMITED).
const (
	maxEvents     = 256
	maxEventBytes = 256 << 10
	// maxHostArg bounds any block a host function reads from the guest.
	maxHostArg = 8 << 20
)

// hostFunctions are the Hall imports of docs/ABI.md, in the Extism default
// namespace extism:host/user, and the Hall's Extism HTTP functions
// (extism_http.go).
//
// # Notes
//
//   - None blocks past the call's deadline (hostile_test.go has one test
//     per function): hall_http runs on the call's context, hall_secret
//     abandons a SecretSource that does not answer in time, hall_emit
//     never waits, hall_invoke hands the call's context to the Invoker,
//     which must return when it is done (the Hall's gives the hop less
//     time than its caller has: host/chain.go, TestChainHopEatsDeadline). WASI sleeps end at the deadline (sleep.go) and
//     FIFOs, sockets and devices are never opened (fs.go).
//   - Bad guest input never panics the host. A host function traps the call
//     only for an offset that is not a kernel block, or (hall_invoke_mem,
//     hall_invoke_take) a range outside the guest's memory
//     (WORKER_BAD_POINTER):
//     the trap is a panic wazero recovers and returns from the guest call,
//     and Worker.Call reports the code. Everything else is an error JSON the
//     guest can act on.
func (w *Worker) hostFunctions() []extism.HostFunction {
	i64 := []extism.ValueType{extism.ValueTypeI64}
	const i32 = extism.ValueTypeI32
	return append([]extism.HostFunction{
		extism.NewHostFunctionWithStack("hall_secret", hallSecret, i64, i64),
		extism.NewHostFunctionWithStack("hall_http", hallHTTP, i64, i64),
		extism.NewHostFunctionWithStack("hall_emit", hallEmit, i64, nil),
		extism.NewHostFunctionWithStack("hall_invoke", hallInvoke, i64, i64),
		extism.NewHostFunctionWithStack("hall_invoke_mem", hallInvokeMem, []extism.ValueType{i32, i32, i32, i32, i32, i32}, i64),
		extism.NewHostFunctionWithStack("hall_invoke_take", hallInvokeTake, []extism.ValueType{i32, i32}, []extism.ValueType{i32}),
	}, extismHTTPFunctions()...)
}

// reservedEvent reports whether an event_id (raw JSON) names a Hall event.
func reservedEvent(id json.RawMessage) bool {
	var s string
	return json.Unmarshal(id, &s) == nil && strings.HasPrefix(s, reservedEventPrefix)
}

func stateOf(ctx context.Context) *callState {
	cs, ok := ctx.Value(callKey{}).(*callState)
	if !ok {
		// Only reachable if Extism calls a host function outside Worker.Call.
		panic(errorf(CodeWorkerTrap, "host function called outside a Hall call"))
	}
	return cs
}

func badPointer(format string, args ...any) {
	panic(&Error{Code: CodeWorkerBadPointer, Message: fmt.Sprintf(format, args...)})
}

// readBlock copies the Extism kernel block at offs. Offset 0 is "no block".
func readBlock(ctx context.Context, p *extism.CurrentPlugin, offs uint64) []byte {
	if offs == 0 {
		return nil
	}
	mem := p.Memory()
	size := uint64(mem.Size())
	if offs >= size {
		badPointer("offset %d outside kernel memory of %d bytes", offs, size)
	}
	n, err := p.LengthWithContext(ctx, offs)
	if err != nil || n == 0 {
		badPointer("offset %d is not a kernel memory block", offs)
	}
	if n > size-offs {
		badPointer("block at %d of %d bytes overruns kernel memory", offs, n)
	}
	if n > maxHostArg {
		badPointer("block at %d of %d bytes exceeds the %d-byte host argument limit", offs, n, maxHostArg)
	}
	b, ok := mem.Read(uint32(offs), uint32(n))
	if !ok {
		badPointer("block at %d of %d bytes is unreadable", offs, n)
	}
	return append([]byte(nil), b...)
}

// writeBlock returns a new kernel block holding b.
func writeBlock(p *extism.CurrentPlugin, b []byte) uint64 {
	offs, err := p.WriteBytes(b)
	if err != nil {
		// The kernel could not allocate: the memory guard has recorded the
		// cause, and Worker.Call reports LIMIT_MEMORY.
		panic(errorf(CodeLimitMemory, "cannot return %d bytes to the guest: %v", len(b), err))
	}
	return offs
}

type guestError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorJSON(code, format string, args ...any) []byte {
	b, _ := json.Marshal(struct {
		Error guestError `json:"error"`
	}{guestError{code, fmt.Sprintf(format, args...)}})
	return b
}

func hallSecret(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
	cs := stateOf(ctx)
	name := string(readBlock(ctx, p, stack[0]))
	var out []byte
	switch {
	case name == "":
		out = errorJSON(GuestBadRequest, "no secret name")
	case !cs.w.secrets[name]:
		out = errorJSON(GuestSecretNotDeclared, "secret %q is not declared by the worker's policy", name)
	default:
		v, ok, timedOut := lookupSecret(ctx, cs.w.eng.secrets, name)
		if timedOut {
			// The deadline passed while a SecretSource was blocking: the
			// call ends at its deadline (CloseOnContextDone) whatever the
			// guest does with this answer.
			out = errorJSON(GuestSecretUnavailable, "secret %q: lookup did not finish before the call's deadline", name)
		} else if !ok {
			out = errorJSON(GuestSecretUnavailable, "secret %q is declared but has no value%s", name, missingSecretHint(cs.w.eng.secrets, name))
		} else {
			out, _ = json.Marshal(struct {
				Value string `json:"value"`
			}{v})
		}
	}
	stack[0] = writeBlock(p, out)
}

func hallEmit(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
	cs := stateOf(ctx)
	ev := readBlock(ctx, p, stack[0])
	var obj map[string]json.RawMessage
	// An event under the Hall's reserved prefix would pass for the Hall's
	// own telemetry (EgressEventID): dropped like an invalid one.
	if len(cs.events) >= maxEvents || cs.eventBytes+len(ev) > maxEventBytes || json.Unmarshal(ev, &obj) != nil || reservedEvent(obj["event_id"]) {
		cs.eventsDropped++
		return
	}
	cs.events = append(cs.events, json.RawMessage(ev))
	cs.eventBytes += len(ev)
}

func hallHTTP(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
	cs := stateOf(ctx)
	raw := readBlock(ctx, p, stack[0])
	// A nil egress (no network_egress) refuses every request, and the
	// attempt is recorded all the same. The exchange does not hold a core.
	var out []byte
	if err := cs.cpu.waiting(func() { out = cs.w.egress.do(ctx, &cs.egress, raw) }); err != nil {
		panic(fmt.Errorf("%s: hall_http: %w", cs.w.name, err))
	}
	stack[0] = writeBlock(p, out)
}

// lookupSecret asks src for name without outliving ctx: a SecretSource is
// embedder code that may block (a vault over the network), and a host
// function must not hold a call past its deadline. A lookup that does not
// finish in time is abandoned (its goroutine ends when src returns).
func lookupSecret(ctx context.Context, src SecretSource, name string) (value string, ok, timedOut bool) {
	if src == nil {
		return "", false, false
	}
	if _, fast := src.(EnvSecrets); fast {
		v, ok := src.Secret(name)
		return v, ok, false
	}
	type answer struct {
		v  string
		ok bool
	}
	ch := make(chan answer, 1)
	go func() {
		v, ok := src.Secret(name)
		ch <- answer{v, ok}
	}()
	select {
	case a := <-ch:
		return a.v, a.ok, false
	case <-ctx.Done():
		return "", false, true
	}
}
