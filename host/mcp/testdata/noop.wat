;; The smallest worker: run returns success at once, with no output. For
;; the overhead benchmark (it measures the Hall and MCP, not the worker).
;; Built by the tests with: wat2wasm noop.wat -o noop.wasm
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32) (i32.const 0)))
