;; bomb: attacks the memory cap. The first body byte picks the attack (no body: 0):
;;   0  memory.grow by 16 pages (1 MiB) until refused, then trap (`unreachable`), printing nothing;
;;   1  one memory.grow of 65535 pages (4 GiB), then trap if refused;
;;   2  one memory.grow of 65535 pages, and answer 200 with what the grow returned (i32, little-endian: -1 when
;;      refused) followed by memory.size in pages (i32): the refusal seen from inside the guest.
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))
    (func (export "handler") (param $req i32) (result i32)
      (local $mode i32) (local $grown i32) (local $body i32) (local $resp i32)
      (if (i32.and
            (i32.load8_u offset=76 (local.get $req))
            (i32.ge_u (i32.load offset=84 (local.get $req)) (i32.const 1)))
        (then (local.set $mode (i32.load8_u (i32.load offset=80 (local.get $req))))))
      (if (i32.eqz (local.get $mode))
        (then
          (loop $grow
            (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
          unreachable))
      (local.set $grown (memory.grow (i32.const 65535)))
      (if (i32.eq (local.get $mode) (i32.const 1))
        (then (if (i32.eq (local.get $grown) (i32.const -1)) (then unreachable))))
      (local.set $body (call $alloc (i32.const 4) (i32.const 8)))
      (i32.store (local.get $body) (local.get $grown))
      (i32.store offset=4 (local.get $body) (memory.size))
      (local.set $resp (call $alloc (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (i32.store8 offset=12 (local.get $resp) (i32.const 1))
      (i32.store offset=16 (local.get $resp) (local.get $body))
      (i32.store offset=20 (local.get $resp) (i32.const 8))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
