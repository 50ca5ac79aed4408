;; burn: a CPU-bound guest for the scale benchmark. Runs a multiply-add loop of @ITERATIONS@ rounds (the
;; benchmark substitutes the number before parsing), stores the result so the loop has an observable effect,
;; and answers 200 with no headers and no body.
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    ;; execute-response layout: status @0, headers (ptr @4, len @8), body option (tag @12, ptr @16, len @20).
    (func (export "handler") (param $req i32) (result i32)
      (local $i i32) (local $acc i32) (local $resp i32)
      (local.set $i (i32.const @ITERATIONS@))
      (local.set $acc (local.get $req))
      (loop $round
        (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 1103515245)) (i32.const 12345)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br_if $round (local.get $i)))
      (i32.store (i32.const 1024) (local.get $acc))
      (local.set $resp (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (i32.store offset=4 (local.get $resp) (i32.const 0))
      (i32.store offset=8 (local.get $resp) (i32.const 0))
      (i32.store8 offset=12 (local.get $resp) (i32.const 0))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
