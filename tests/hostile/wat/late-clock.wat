;; late-clock: reads the WASI monotonic clock until N ns have passed since it started (N = first 8 bytes of the
;; body, little-endian u64), then calls `logging.log-info("late host call")`; answers 200. The guest starts after
;; its deadline was set, so with N >= the timeout that log call comes after the deadline.
(component $C
  ;; @include _alga_types.wat
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (export "now" (func (result u64)))))
  (import "alga:extension/logging" (instance $logging
    (export "log-info" (func (param "message" string)))))
  ;; @include _runtime.wat
  (core func $now (canon lower (func $clock "now")))
  (core func $log-info (canon lower (func $logging "log-info") (memory $mem) string-encoding=utf8))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "host" "now" (func $now (result i64)))
    (import "host" "log-info" (func $log-info (param i32 i32)))
    (data (i32.const 1024) "late host call")
    (func (export "handler") (param $req i32) (result i32)
      (local $wait i64) (local $start i64) (local $resp i32)
      (if (i32.load8_u offset=76 (local.get $req))
        (then (local.set $wait (i64.load (i32.load offset=80 (local.get $req))))))
      (local.set $start (call $now))
      (loop $spin
        (br_if $spin (i64.lt_u (i64.sub (call $now) (local.get $start)) (local.get $wait))))
      (call $log-info (i32.const 1024) (i32.const 14))
      (local.set $resp (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "host" (instance
      (export "now" (func $now))
      (export "log-info" (func $log-info))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
