;; Hostile: WASI sleeps (poll_oneoff with one relative clock subscription)
;; in a call; startsleep.wat sleeps in the start section. A sleep must end
;; at the call's deadline (issue 10).
;; Built by the tests with: wat2wasm sleep.wat -o sleep.wasm
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; sleep writes one clock subscription at 0 (48 bytes: userdata, tag 0 =
  ;; clock, clock id 1 = monotonic, timeout ns, precision, flags 0 =
  ;; relative) and polls it; the event goes to 64, nevents to 128.
  (func $sleep (param $ns i64)
    (i64.store (i32.const 0) (i64.const 7))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (local.get $ns))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))))
  (func (export "sleep_hour") (result i32)
    (call $sleep (i64.const 3600000000000))
    (i32.const 0))
  ;; sleep_loop sleeps 1 s at a time, forever: every sleep after the
  ;; deadline must return at once and the loop must still be stopped.
  (func (export "sleep_loop") (result i32)
    (loop $l (call $sleep (i64.const 1000000000)) (br $l))
    (i32.const 0))
  (func (export "run") (result i32) (i32.const 0)))
