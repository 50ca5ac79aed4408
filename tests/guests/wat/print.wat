;; print: writes through WASI: N times (N = first 4 bytes of the body, little-endian; 1 without a body)
;; "out line\n" to stdout; "err line\n" to stderr; "hel" then "lo\n" to stdout as two writes; and
;; "no newline at end" to stderr. Answers 200.
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
    (import "wasi" "drop" (func $drop (param i32)))
    (data (i32.const 1024) "out line\n")
    (data (i32.const 1040) "err line\n")
    (data (i32.const 1056) "hel")
    (data (i32.const 1072) "lo\n")
    (data (i32.const 1088) "no newline at end")
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))
    (func (export "handler") (param $req i32) (result i32)
      (local $n i32) (local $out i32) (local $err i32) (local $ret i32) (local $resp i32)
      (local.set $n (i32.const 1))
      (if (i32.and
            (i32.load8_u offset=76 (local.get $req))
            (i32.ge_u (i32.load offset=84 (local.get $req)) (i32.const 4)))
        (then (local.set $n (i32.load (i32.load offset=80 (local.get $req))))))
      (local.set $ret (call $alloc (i32.const 4) (i32.const 12)))
      (local.set $out (call $get-stdout))
      (local.set $err (call $get-stderr))
      (block $done
        (loop $lines
          (br_if $done (i32.eqz (local.get $n)))
          (call $write (local.get $out) (i32.const 1024) (i32.const 9) (local.get $ret))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $lines)))
      (call $write (local.get $err) (i32.const 1040) (i32.const 9) (local.get $ret))
      (call $write (local.get $out) (i32.const 1056) (i32.const 3) (local.get $ret))
      (call $write (local.get $out) (i32.const 1072) (i32.const 3) (local.get $ret))
      (call $write (local.get $err) (i32.const 1088) (i32.const 17) (local.get $ret))
      (call $drop (local.get $out))
      (call $drop (local.get $err))
      (local.set $resp (call $alloc (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "wasi" (instance
      (export "get-stdout" (func $get-stdout))
      (export "get-stderr" (func $get-stderr))
      (export "write" (func $write))
      (export "drop" (func $drop-output-stream))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
