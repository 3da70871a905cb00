;; Hostile, for the soak test: grows a table without a maximum by 1M
;; elements (8 MB of host memory in wazero) at a time and fills each new
;; part, so that the pages are really used. Contained when table.grow fails
;; within the worker's table budget (its memory_mb: 2 grows at 16 MiB): it
;; then traps (unreachable), WORKER_TRAP. Past the budget it returns the
;; number of grows, WORKER_FAILED, which the soak test reports as not
;; contained. (testdata/sandbox/tablegrow.wat returns 0 instead: the soak
;; test wants every hostile call to end in a limit or trap code.)
;; Built by the tests with: wat2wasm tablegrow.wat -o tablegrow.wasm
(module
  (memory (export "memory") 1)
  (table $t 0 funcref)
  (func (export "run") (result i32)
    (local $n i32) (local $old i32)
    (block $full
      (loop $l
        (local.set $old (table.grow $t (ref.null func) (i32.const 1000000)))
        (br_if $full (i32.eq (local.get $old) (i32.const -1)))
        (table.fill $t (local.get $old) (ref.null func) (i32.const 1000000))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $full (i32.ge_u (local.get $n) (i32.const 4000)))
        (br $l)))
    (if (i32.le_u (local.get $n) (i32.const 2)) (then unreachable))
    (local.get $n)))
