;; A WASI reactor whose _initialize has an effect: it creates "started.txt"
;; in its first preopened directory (fd 3) and writes "ran" into it. Extism
;; runs _initialize at the first call of an instance (inside the call, under
;; its decision), never at instantiation: enrolment and pool refills do not
;; run it (issue 21).
;; Built by the tests with: wat2wasm initwrite.wat -o initwrite.wasm
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "started.txt")
  (data (i32.const 32) "ran")
  (func (export "_initialize")
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 11)
                   (i32.const 9) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 64)))
      (then
        (i32.store (i32.const 80) (i32.const 32))
        (i32.store (i32.const 84) (i32.const 3))
        (drop (call $fd_write (i32.load (i32.const 64)) (i32.const 80) (i32.const 1) (i32.const 96))))))
  (func (export "run") (result i32) (i32.const 0)))
