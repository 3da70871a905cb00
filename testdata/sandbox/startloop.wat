;; Hostile: the start section loops forever, so instantiation itself never
;; ends unless it runs under a deadline (issue 10).
;; Built by the tests with: wat2wasm startloop.wat -o startloop.wasm
(module
  (memory (export "memory") 1)
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "run") (result i32) (i32.const 0)))
