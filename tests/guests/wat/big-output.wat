;; big-output: answers 200 with a body of N bytes (N = first 4 bytes of the request body, little-endian;
;; 1 MiB without a body), byte i being i mod 251.
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))
    (func (export "handler") (param $req i32) (result i32)
      (local $n i32) (local $body i32) (local $i i32) (local $resp i32)
      (local.set $n (i32.const 1048576))
      (if (i32.and
            (i32.load8_u offset=76 (local.get $req))
            (i32.ge_u (i32.load offset=84 (local.get $req)) (i32.const 4)))
        (then (local.set $n (i32.load (i32.load offset=80 (local.get $req))))))
      (local.set $body (call $alloc (i32.const 1) (local.get $n)))
      (block $done
        (loop $fill
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (i32.store8 (i32.add (local.get $body) (local.get $i)) (i32.rem_u (local.get $i) (i32.const 251)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $fill)))
      (local.set $resp (call $alloc (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (i32.store8 offset=12 (local.get $resp) (i32.const 1))
      (i32.store offset=16 (local.get $resp) (local.get $body))
      (i32.store offset=20 (local.get $resp) (local.get $n))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
