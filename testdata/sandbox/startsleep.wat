;; Hostile: the start section sleeps for an hour (issue 10).
;; Built by the tests with: wat2wasm startsleep.wat -o startsleep.wasm
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $start
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))))
  (start $start)
  (func (export "run") (result i32) (i32.const 0)))
