;; A start section with an effect: it creates "started.txt" in its first
;; preopened directory (fd 3) and writes "ran" into it. wazero runs a start
;; section at every instantiation, so the file appears wherever the module
;; is instantiated with that mount. Before a decision (enrolment, pool
;; refills) it must get no mount, and write nothing (issue 21).
;; Built by the tests with: wat2wasm startwrite.wat -o startwrite.wasm
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "started.txt")
  (data (i32.const 32) "ran")
  (func $write
    ;; path_open(fd 3, dirflags 0, "started.txt", O_CREAT|O_TRUNC, all rights, 0, fdflags 0, &fd at 64)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 11)
                   (i32.const 9) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 64)))
      (then
        ;; one iovec at 80: "ran" (3 bytes)
        (i32.store (i32.const 80) (i32.const 32))
        (i32.store (i32.const 84) (i32.const 3))
        (drop (call $fd_write (i32.load (i32.const 64)) (i32.const 80) (i32.const 1) (i32.const 96))))))
  (start $write)
  (func (export "run") (result i32) (i32.const 0)))
