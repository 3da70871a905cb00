;; A worker whose initial memory (128 MiB) exceeds the test limits.
;; Built by the tests with: wat2wasm bigmem.wat -o bigmem.wasm
(module
  (memory (export "memory") 2048)
  (func (export "run") (result i32) (i32.const 0)))
