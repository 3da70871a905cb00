;; Hostile: a table without a maximum, grown by 1M elements (8 MB of host
;; memory in wazero) at a time until table.grow fails or 4,000 grows (32 GB).
;; Returns 0 when at most 2 grows succeeded (16 MB: the table budget of a
;; 16 MiB worker), else the number of successful grows (issue 10).
;; Built by the tests with: wat2wasm tablegrow.wat -o tablegrow.wasm
(module
  (memory (export "memory") 1)
  (table $t 0 funcref)
  (func (export "run") (result i32)
    (local $n i32)
    (block $full
      (loop $l
        (br_if $full (i32.eq (table.grow $t (ref.null func) (i32.const 1000000)) (i32.const -1)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $full (i32.ge_u (local.get $n) (i32.const 4000)))
        (br $l)))
    (if (result i32) (i32.le_u (local.get $n) (i32.const 2))
      (then (i32.const 0)) (else (local.get $n)))))
