;; Hostile: behaves at enrollment, then its start section loops forever once
;; the file "trigger" exists in its first preopened directory (fd 3): every
;; later instantiation (pool refill, call) hangs unless bounded (issue 10).
;; Built by the tests with: wat2wasm starttrigger.wat -o starttrigger.wasm
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "trigger")
  (func $start
    ;; path_open(fd 3, dirflags 0, "trigger", oflags 0, rights fd_read, 0, fdflags 0, &fd at 64)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 7)
                   (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))
      (then (loop $l (br $l)))))
  (start $start)
  (func (export "run") (result i32) (i32.const 0)))
