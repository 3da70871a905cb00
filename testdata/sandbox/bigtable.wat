;; Hostile: declares a 100M-entry table (800 MB of host memory in wazero)
;; and fills it; refused at load under any ordinary memory limit (issue 10).
;; Built by the tests with: wat2wasm bigtable.wat -o bigtable.wasm
(module
  (memory (export "memory") 1)
  (table $t 100000000 funcref)
  (func (export "run") (result i32)
    (table.fill $t (i32.const 0) (ref.null func) (i32.const 100000000))
    (i32.const 0)))
