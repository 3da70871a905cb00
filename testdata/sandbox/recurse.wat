;; Hostile: unbounded recursion; ends as LIMIT_STACK when the stack guard
;; (wasmmod.GuardStack) finds its budget spent (issue 10, RATIONALE.md "Call stack").
;; Built by the tests with: wat2wasm recurse.wat -o recurse.wasm
(module
  (memory (export "memory") 1)
  (func $down (param i64) (result i64)
    (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
  (func (export "run") (result i32)
    (drop (call $down (i64.const 0)))
    (i32.const 0)))
