;; A worker that never returns, for the time-limit, saturation and
;; shutdown tests of host/server. It imports nothing: the sandbox runs any
;; module exporting `() -> i32` functions.
;; Built by the tests with: wat2wasm loop.wat -o loop.wasm
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
