;; A worker that never returns, for the cancellation and saturation tests of
;; host/mcp (it is stopped by cancellation or its time limit).
;; Built by the tests with: wat2wasm loop.wat -o loop.wasm
(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
