;; Hostile: its start section loops forever on half of its instantiations
;; (an odd byte from WASI random_get), with no grant at all. Such a module
;; is pre-instantiated (it holds nothing a decision must name), so its pool
;; refills keep failing now and then: they must back off, count, and not
;; hang Close (issue 10).
;; Built by the tests with: wat2wasm startcoin.wat -o startcoin.wasm
(module
  (import "wasi_snapshot_preview1" "random_get"
    (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $start
    (drop (call $random_get (i32.const 0) (i32.const 1)))
    (if (i32.and (i32.load8_u (i32.const 0)) (i32.const 1))
      (then (loop $l (br $l)))))
  (start $start)
  (func (export "run") (result i32) (i32.const 0)))
