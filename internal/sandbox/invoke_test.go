package sandbox

import (
	"context"
	"testing"
	"time"
)

// A sub-dispatch never waits for the memory budget (its ancestors hold
// their charges while it runs): it is admitted at once, ahead of waiting
// calls, when its charge fits, and refused at once when it does not.
func TestBudgetAcquireNowNeverWaits(t *testing.T) {
	b := newMemoryBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	// A call waiting for 50 bytes (it cannot fit before the 60 return).
	b.mu.Lock()
	b.waiters = append(b.waiters, &budgetWaiter{n: 50, ready: make(chan struct{})})
	b.mu.Unlock()
	if err := b.acquireNow(ctx, 30); err != nil {
		t.Fatalf("a hop whose charge fits was refused behind a waiting call: %v", err)
	}
	if err := b.acquireNow(ctx, 20); err == nil {
		t.Fatal("a hop whose charge does not fit was admitted")
	}
	if got := b.inUse(); got != 90 {
		t.Fatalf("in use %d, want 90", got)
	}
}

// invokeMemModule calls hall_invoke_mem and hall_invoke_take with the
// pointers of each export's scenario, checks in its own memory what the
// host wrote and returns 0, or the number of the first check that failed.
// Memory: the capability at 0, the input "abc" at 16, buffers at 64 and 128.
const invokeMemModule = `(module
  (import "extism:host/user" "hall_invoke_mem" (func $invoke (param i32 i32 i32 i32 i32 i32) (result i64)))
  (import "extism:host/user" "hall_invoke_take" (func $take (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "cap.test.echo")
  (data (i32.const 16) "abc")
  (data (i32.const 32) "cap.test.deny")
  (func $abcAt (param $p i32) (result i32)
    (i32.and (i32.and
      (i32.eq (i32.load8_u (local.get $p)) (i32.const 97))
      (i32.eq (i32.load8_u offset=1 (local.get $p)) (i32.const 98)))
      (i32.eq (i32.load8_u offset=2 (local.get $p)) (i32.const 99))))
  ;; The reply fits: written at 64, its length returned, no error bit.
  (func (export "fits") (result i32)
    (if (i64.ne (call $invoke (i32.const 0) (i32.const 13) (i32.const 16) (i32.const 3) (i32.const 64) (i32.const 3)) (i64.const 3))
      (then (return (i32.const 1))))
    (if (i32.eqz (call $abcAt (i32.const 64))) (then (return (i32.const 2))))
    (i32.const 0))
  ;; The reply does not fit: nothing written at 64; take refuses a wrong
  ;; length, copies once, then holds nothing.
  (func (export "take") (result i32)
    (if (i64.ne (call $invoke (i32.const 0) (i32.const 13) (i32.const 16) (i32.const 3) (i32.const 64) (i32.const 2)) (i64.const 3))
      (then (return (i32.const 1))))
    (if (i32.ne (i32.load8_u (i32.const 64)) (i32.const 0)) (then (return (i32.const 2))))
    (if (i32.ne (call $take (i32.const 128) (i32.const 2)) (i32.const 1)) (then (return (i32.const 3))))
    (if (i32.ne (call $take (i32.const 128) (i32.const 3)) (i32.const 0)) (then (return (i32.const 4))))
    (if (i32.eqz (call $abcAt (i32.const 128))) (then (return (i32.const 5))))
    (if (i32.ne (call $take (i32.const 128) (i32.const 3)) (i32.const 1)) (then (return (i32.const 6))))
    (i32.const 0))
  ;; An error reply sets bit 32 and starts with {"code".
  (func (export "error") (result i32)
    (local $r i64)
    (local.set $r (call $invoke (i32.const 32) (i32.const 13) (i32.const 16) (i32.const 3) (i32.const 128) (i32.const 512)))
    (if (i64.eqz (i64.and (local.get $r) (i64.const 0x100000000))) (then (return (i32.const 1))))
    (if (i32.ne (i32.load8_u offset=2 (i32.const 128)) (i32.const 99)) (then (return (i32.const 2))))
    (i32.const 0))
  ;; Ranges that end past the memory, or wrap around 2^32: each traps.
  (func (export "bad_cap") (result i32)
    (drop (call $invoke (i32.const -1) (i32.const 2) (i32.const 16) (i32.const 3) (i32.const 64) (i32.const 64))) (i32.const 0))
  (func (export "bad_input") (result i32)
    (drop (call $invoke (i32.const 0) (i32.const 13) (i32.const 65530) (i32.const 7) (i32.const 64) (i32.const 64))) (i32.const 0))
  (func (export "bad_output") (result i32)
    (drop (call $invoke (i32.const 0) (i32.const 13) (i32.const 16) (i32.const 3) (i32.const 65535) (i32.const 2))) (i32.const 0))
  (func (export "bad_take") (result i32)
    (drop (call $invoke (i32.const 0) (i32.const 13) (i32.const 16) (i32.const 3) (i32.const 64) (i32.const 0)))
    (drop (call $take (i32.const 65534) (i32.const 3))) (i32.const 0)))`

// hall_invoke_mem reads its arguments from and writes its reply to the
// guest's own memory, checks every range before the Invoker is asked,
// and holds a reply too long for the guest's buffer for hall_invoke_take.
func TestInvokeMem(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, compileWAT(t, invokeMemModule), Spec{Name: "invokemem", Limits: Limits{Timeout: 10 * time.Second, MemoryBytes: 16 << 20}})
	for _, tc := range []struct {
		export string
		// code is the call's error code, "" for success.
		code string
		// asked is whether the Invoker must have been asked.
		asked bool
	}{
		{"fits", "", true},
		{"take", "", true},
		{"error", "", true},
		{"bad_cap", CodeWorkerBadPointer, false},
		{"bad_input", CodeWorkerBadPointer, false},
		{"bad_output", CodeWorkerBadPointer, false},
		{"bad_take", CodeWorkerBadPointer, true},
	} {
		t.Run(tc.export, func(t *testing.T) {
			var got []string
			invoke := func(_ context.Context, capability string, input []byte) ([]byte, *InvokeError) {
				got = append(got, capability+" "+string(input))
				if capability == "cap.test.deny" {
					return nil, &InvokeError{Code: GuestInvokeDenied, DenyCode: "DENY_TOOL_NOT_DECLARED", Message: "no"}
				}
				return input, nil
			}
			_, err := w.Call(context.Background(), Request{Export: tc.export, Invoke: invoke})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("check failed: %v", err)
				}
			} else {
				wantCode(t, err, tc.code)
			}
			if asked := len(got) > 0; asked != tc.asked {
				t.Fatalf("Invoker asked %v (%q), want %v", asked, got, tc.asked)
			}
			if tc.asked && got[0] != "cap.test.echo abc" && got[0] != "cap.test.deny abc" {
				t.Fatalf("Invoker got %q", got[0])
			}
		})
	}
	if _, err := w.Call(context.Background(), Request{Export: "fits", Invoke: func(context.Context, string, []byte) ([]byte, *InvokeError) { return []byte("abc"), nil }}); err != nil {
		t.Fatalf("after the traps: %v", err)
	}
}
