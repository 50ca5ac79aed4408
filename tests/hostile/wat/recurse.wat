;; recurse: unbounded recursion (not a tail call), until the wasm stack is exhausted.
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  (core module $main
    (func $down (param $depth i64) (result i64)
      (i64.add (call $down (i64.add (local.get $depth) (i64.const 1))) (local.get $depth)))
    (func (export "handler") (param $req i32) (result i32)
      (drop (call $down (i64.const 0)))
      unreachable))
  (core instance $i (instantiate $main))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
