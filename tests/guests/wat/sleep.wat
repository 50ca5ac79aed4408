;; sleep: waits through WASI clocks and polling, then answers 200. The body's first 8 bytes (little-endian
;; u64) give the duration in nanoseconds (2 s without a body); a 9th byte of 1 waits with `poll` instead of
;; `pollable.block`.
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type $pollable-e (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow $pollable-e))))
    (export "poll" (func (param "in" (list (borrow $pollable-e))) (result (list u32))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.3" (instance $clock
    (alias outer $C $pollable (type $p))
    (export "pollable" (type $p-e (eq $p)))
    (type $duration u64)
    (export "duration" (type $duration-e (eq $duration)))
    (export "subscribe-duration" (func (param "when" $duration-e) (result (own $p-e))))))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core func $poll-list (canon lower (func $poll "poll") (memory $mem) (realloc $realloc)))
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $drop (canon resource.drop $pollable))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "wasi" "block" (func $block (param i32)))
    (import "wasi" "poll" (func $poll (param i32 i32 i32)))
    (import "wasi" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "wasi" "drop" (func $drop (param i32)))
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))
    (func (export "handler") (param $req i32) (result i32)
      (local $ns i64) (local $use-poll i32) (local $body i32) (local $len i32) (local $p i32) (local $list i32)
      (local $resp i32)
      (local.set $ns (i64.const 2000000000))
      (if (i32.load8_u offset=76 (local.get $req))
        (then
          (local.set $body (i32.load offset=80 (local.get $req)))
          (local.set $len (i32.load offset=84 (local.get $req)))
          (if (i32.ge_u (local.get $len) (i32.const 8))
            (then (local.set $ns (i64.load (local.get $body)))))
          (if (i32.ge_u (local.get $len) (i32.const 9))
            (then (local.set $use-poll (i32.load8_u offset=8 (local.get $body)))))))
      (local.set $p (call $subscribe (local.get $ns)))
      (if (local.get $use-poll)
        (then
          (local.set $list (call $alloc (i32.const 4) (i32.const 12)))
          (i32.store (local.get $list) (local.get $p))
          (call $poll (local.get $list) (i32.const 1) (i32.add (local.get $list) (i32.const 4))))
        (else (call $block (local.get $p))))
      (call $drop (local.get $p))
      (local.set $resp (call $alloc (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "wasi" (instance
      (export "block" (func $block))
      (export "poll" (func $poll-list))
      (export "subscribe" (func $subscribe))
      (export "drop" (func $drop))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
