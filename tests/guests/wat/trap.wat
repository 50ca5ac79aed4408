;; trap: executes `unreachable` when the request has no body; with a body it answers 204 (so one component
;; can show that a trap leaves nothing behind for the next invocation).
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (func (export "handler") (param $req i32) (result i32)
      (local $resp i32)
      (if (i32.eqz (i32.load8_u offset=76 (local.get $req))) (then unreachable))
      (local.set $resp (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 204))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
