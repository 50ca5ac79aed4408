;; echo: answers 200 with the request body, and headers x-method, x-url, x-tenant (and x-request-id when the
;; context has one) followed by the request's own headers.
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (data (i32.const 1024) "x-method")
    (data (i32.const 1040) "x-url")
    (data (i32.const 1056) "x-tenant")
    (data (i32.const 1072) "x-request-id")
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))
    (func $header (param $at i32) (param $np i32) (param $nl i32) (param $vp i32) (param $vl i32)
      (i32.store (local.get $at) (local.get $np))
      (i32.store offset=4 (local.get $at) (local.get $nl))
      (i32.store offset=8 (local.get $at) (local.get $vp))
      (i32.store offset=12 (local.get $at) (local.get $vl)))
    ;; execute-request layout: context @0 (request-id option @0, tenant-id @12, ...), http @52 (method @52,
    ;; url @60, headers @68, body option @76). execute-response: status @0, headers @4, body option @12.
    (func (export "handler") (param $req i32) (result i32)
      (local $resp i32) (local $hdrs i32) (local $n i32) (local $ours i32)
      (local.set $n (i32.load offset=72 (local.get $req)))
      (local.set $ours (select (i32.const 4) (i32.const 3) (i32.load8_u (local.get $req))))
      (local.set $hdrs
        (call $alloc (i32.const 4) (i32.shl (i32.add (local.get $n) (local.get $ours)) (i32.const 4))))
      (call $header (local.get $hdrs) (i32.const 1024) (i32.const 8)
        (i32.load offset=52 (local.get $req)) (i32.load offset=56 (local.get $req)))
      (call $header (i32.add (local.get $hdrs) (i32.const 16)) (i32.const 1040) (i32.const 5)
        (i32.load offset=60 (local.get $req)) (i32.load offset=64 (local.get $req)))
      (call $header (i32.add (local.get $hdrs) (i32.const 32)) (i32.const 1056) (i32.const 8)
        (i32.load offset=12 (local.get $req)) (i32.load offset=16 (local.get $req)))
      (if (i32.load8_u (local.get $req))
        (then
          (call $header (i32.add (local.get $hdrs) (i32.const 48)) (i32.const 1072) (i32.const 12)
            (i32.load offset=4 (local.get $req)) (i32.load offset=8 (local.get $req)))))
      (memory.copy
        (i32.add (local.get $hdrs) (i32.shl (local.get $ours) (i32.const 4)))
        (i32.load offset=68 (local.get $req))
        (i32.shl (local.get $n) (i32.const 4)))
      (local.set $resp (call $alloc (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (i32.store offset=4 (local.get $resp) (local.get $hdrs))
      (i32.store offset=8 (local.get $resp) (i32.add (local.get $n) (local.get $ours)))
      (memory.copy (i32.add (local.get $resp) (i32.const 12)) (i32.add (local.get $req) (i32.const 76)) (i32.const 12))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
