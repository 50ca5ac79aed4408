;; spin: loops forever (only an interrupt stops it).
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  (core module $main
    (func (export "handler") (param $req i32) (result i32)
      (loop $forever (br $forever))
      unreachable))
  (core instance $i (instantiate $main))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
