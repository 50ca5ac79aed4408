;; clocklog: reads the WASI wall clock, then calls `logging.log-info("one")` and `logging.{{SECOND_FN}}("{{SECOND_ARG}}")`;
;; answers {{STATUS}} with the clock's seconds (u64, little-endian) as its body. A template: the journal tests build the
;; recorded bundle (log-info "two", 200) and changed ones (another function or argument as the third call, another
;; status, or a trap after the calls: {{TAIL}} is `unreachable`).
(component $C
  ;; @include _alga_types.wat
  (type $datetime (record (field "seconds" u64) (field "nanoseconds" u32)))
  (import "wasi:clocks/wall-clock@0.2.0" (instance $wall
    (export "datetime" (type $datetime-e (eq $datetime)))
    (export "now" (func (result $datetime-e)))))
  (import "alga:extension/logging" (instance $logging
    (export "log-info" (func (param "message" string)))
    (export "log-warn" (func (param "message" string)))))
  ;; @include _runtime.wat
  (core func $now (canon lower (func $wall "now") (memory $mem)))
  (core func $log-info (canon lower (func $logging "log-info") (memory $mem) string-encoding=utf8))
  (core func $log-second (canon lower (func $logging "{{SECOND_FN}}") (memory $mem) string-encoding=utf8))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "host" "now" (func $now (param i32)))
    (import "host" "log-info" (func $log-info (param i32 i32)))
    (import "host" "log-second" (func $log-second (param i32 i32)))
    (data (i32.const 1024) "one")
    (data (i32.const 1040) "{{SECOND_ARG}}")
    (func (export "handler") (param $req i32) (result i32)
      (local $resp i32)
      (call $now (i32.const 2048))
      (call $log-info (i32.const 1024) (i32.const 3))
      (call $log-second (i32.const 1040) (i32.const {{SECOND_LEN}}))
      {{TAIL}}
      (local.set $resp (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const {{STATUS}}))
      ;; body: some(list<u8>) of the 8 bytes of `seconds`
      (i32.store8 offset=12 (local.get $resp) (i32.const 1))
      (i32.store offset=16 (local.get $resp) (i32.const 2048))
      (i32.store offset=20 (local.get $resp) (i32.const 8))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "host" (instance
      (export "now" (func $now))
      (export "log-info" (func $log-info))
      (export "log-second" (func $log-second))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
