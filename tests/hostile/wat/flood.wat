;; flood: writes 4096-byte blocks of 64-byte lines alternately to stdout and stderr, N blocks to each (N = first
;; 4 bytes of the body, little-endian; no body or 0: forever), then answers 200.
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  ;; @include _wasi_output.wat
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "wasi" "get-stdout" (func $get-stdout (result i32)))
    (import "wasi" "get-stderr" (func $get-stderr (result i32)))
    (import "wasi" "write" (func $write (param i32 i32 i32 i32)))
    (func (export "handler") (param $req i32) (result i32)
      (local $n i32) (local $i i32) (local $out i32) (local $err i32) (local $resp i32)
      (if (i32.and
            (i32.load8_u offset=76 (local.get $req))
            (i32.ge_u (i32.load offset=84 (local.get $req)) (i32.const 4)))
        (then (local.set $n (i32.load (i32.load offset=80 (local.get $req))))))
      ;; 4096 bytes at 1024: 64 lines of 63 'x' and a newline
      (memory.fill (i32.const 1024) (i32.const 120) (i32.const 4096))
      (loop $line
        (i32.store8 offset=1087 (local.get $i) (i32.const 10))
        (local.set $i (i32.add (local.get $i) (i32.const 64)))
        (br_if $line (i32.lt_u (local.get $i) (i32.const 4096))))
      (local.set $i (i32.const 0))
      (local.set $out (call $get-stdout))
      (local.set $err (call $get-stderr))
      (block $done
        (loop $block
          (br_if $done (i32.and (i32.ne (local.get $n) (i32.const 0)) (i32.ge_u (local.get $i) (local.get $n))))
          (call $write (local.get $out) (i32.const 1024) (i32.const 4096) (i32.const 8192))
          (call $write (local.get $err) (i32.const 1024) (i32.const 4096) (i32.const 8192))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $block)))
      (local.set $resp (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "wasi" (instance
      (export "get-stdout" (func $get-stdout))
      (export "get-stderr" (func $get-stderr))
      (export "write" (func $write))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
