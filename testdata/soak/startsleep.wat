;; Hostile, for the soak test: behaves at enrollment, then its start section
;; sleeps for an hour (WASI poll_oneoff, one relative clock subscription)
;; once the file "trigger" exists in its first preopened directory (fd 3):
;; every later instantiation must end at the dispatch's deadline.
;; (testdata/sandbox/startsleep.wat sleeps at once and is refused at enroll;
;; testdata/sandbox/starttrigger.wat loops instead of sleeping.)
;; Built by the tests with: wat2wasm startsleep.wat -o startsleep.wasm
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "trigger")
  (func $start
    ;; path_open(fd 3, dirflags 0, "trigger", oflags 0, rights fd_read, 0, fdflags 0, &fd at 256)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 7)
                   (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 256)))
      (then
        ;; one clock subscription at 0 (userdata, tag 0 = clock, clock id 1 =
        ;; monotonic, 1 h, precision 0, flags 0 = relative); event at 64,
        ;; nevents at 128.
        (i64.store (i32.const 0) (i64.const 7))
        (i32.store8 (i32.const 8) (i32.const 0))
        (i32.store (i32.const 16) (i32.const 1))
        (i64.store (i32.const 24) (i64.const 3600000000000))
        (i64.store (i32.const 32) (i64.const 0))
        (i32.store16 (i32.const 40) (i32.const 0))
        (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))))))
  (start $start)
  (func (export "run") (result i32) (i32.const 0)))
