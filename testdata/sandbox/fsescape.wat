;; Raw WASI filesystem escapes against the first preopen (fd 3), bypassing any
;; guest-language path cleaning. Each export returns the WASI errno: 0 means
;; the host allowed the operation.
;; Built by the tests with: wat2wasm fsescape.wat -o fsescape.wasm
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "../escape.txt")        ;; 13
  (data (i32.const 200) "../../../../etc/hostname") ;; 24
  (data (i32.const 300) "evil")                  ;; 4
  (data (i32.const 400) "dirlink/new.txt")       ;; 15
  (data (i32.const 500) "sub/../../escape2.txt") ;; 21

  (func $create (param $p i32) (param $n i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (local.get $p) (local.get $n)
      (i32.const 1) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 16)))

  (func (export "dotdot_create") (result i32) (call $create (i32.const 100) (i32.const 13)))
  (func (export "dotdot_nested") (result i32) (call $create (i32.const 500) (i32.const 21)))
  (func (export "through_dirlink") (result i32) (call $create (i32.const 400) (i32.const 15)))
  (func (export "symlink_out") (result i32)
    (call $path_symlink (i32.const 200) (i32.const 24) (i32.const 3) (i32.const 300) (i32.const 4)))
)
