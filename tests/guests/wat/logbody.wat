;; logbody: logs its request body (as UTF-8 text) through `alga:extension/logging.log-error`, then answers 204.
(component $C
  ;; @include _alga_types.wat
  (import "alga:extension/logging" (instance $logging
    (export "log-info" (func (param "message" string)))
    (export "log-warn" (func (param "message" string)))
    (export "log-error" (func (param "message" string)))))
  ;; @include _runtime.wat
  (core func $log-error (canon lower (func $logging "log-error") (memory $mem) string-encoding=utf8))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "host" "log-error" (func $log-error (param i32 i32)))
    (func (export "handler") (param $req i32) (result i32)
      (local $resp i32)
      (if (i32.load8_u offset=76 (local.get $req))
        (then (call $log-error (i32.load offset=80 (local.get $req)) (i32.load offset=84 (local.get $req)))))
      (local.set $resp (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 204))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "host" (instance (export "log-error" (func $log-error))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
