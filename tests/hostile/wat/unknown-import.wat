;; unknown-import: imports an interface no runner defines (`alga:extension/teleport`, function `beam`).
(component $C
  ;; @include _alga_types.wat
  (import "alga:extension/teleport" (instance $teleport
    (export "beam" (func (param "to" string)))))
  ;; @include _runtime.wat
  (core func $beam (canon lower (func $teleport "beam") (memory $mem) string-encoding=utf8))
  (core module $main
    (import "host" "beam" (func $beam (param i32 i32)))
    (func (export "handler") (param $req i32) (result i32)
      (call $beam (i32.const 0) (i32.const 0))
      unreachable))
  (core instance $i (instantiate $main (with "host" (instance (export "beam" (func $beam))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
