;; Hand-written adversarial Extism worker for internal/sandbox tests.
;; Built by the tests with: wat2wasm adversary.wat -o adversary.wasm
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/user" "hall_secret" (func $hall_secret (param i64) (result i64)))
  (import "extism:host/user" "hall_http" (func $hall_http (param i64) (result i64)))
  (import "extism:host/user" "hall_emit" (func $hall_emit (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"url\":\"http://127.0.0.1:9/\"}")

  ;; put copies guest memory [ptr, ptr+len) into a new kernel block.
  (func $put (param $ptr i32) (param $len i32) (result i64)
    (local $offs i64) (local $i i32)
    (local.set $offs (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $offs) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $offs))

  (func (export "run") (result i32) (i32.const 0))

  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))

  (func (export "grow") (result i32)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)

  (func (export "trap") (result i32) unreachable)

  (func (export "fail") (result i32) (i32.const 7))

  (func (export "badptr_secret") (result i32)
    (drop (call $hall_secret (i64.const 0xffffffff0000)))
    (i32.const 0))

  (func (export "badptr_emit") (result i32)
    (call $hall_emit (i64.const 0x10000000000))
    (i32.const 0))

  ;; an offset inside kernel memory that is not the start of a block
  (func (export "badptr_inside") (result i32)
    (drop (call $hall_http (i64.add (call $put (i32.const 0) (i32.const 8)) (i64.const 3))))
    (i32.const 0))

  ;; Extism's own load_u64 given an offset past the kernel memory
  (func (export "badptr_kernel") (result i32)
    (drop (call $load_u64 (i64.const 0xffffffff0000)))
    (i32.const 0))

  (func (export "big_output") (result i32)
    (call $output_set (call $alloc (i64.const 2000000)) (i64.const 2000000))
    (i32.const 0))

  (func (export "extism_http") (result i32)
    (drop (call $http_request (call $put (i32.const 0) (i32.const 29)) (i64.const 0)))
    (i32.const 0))

  ;; not callable: takes a parameter
  (func (export "needs_param") (param i32) (result i32) (local.get 0))
)
