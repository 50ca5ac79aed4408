;; grow: grows its memory by 16 pages (1 MiB) at a time. With a body whose first 4 bytes (little-endian) are
;; N > 0 it stops after N MiB and answers 200 with the final memory size in pages (4 bytes, little-endian).
;; Otherwise it grows until memory.grow fails, then reports like a Rust guest's allocator ("memory
;; allocation of ... failed" on stderr) and traps (unreachable).
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  ;; @include _wasi_output.wat
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "wasi" "get-stderr" (func $get-stderr (result i32)))
    (import "wasi" "write" (func $write (param i32 i32 i32 i32)))
    (data (i32.const 1024) "memory allocation of 1048576 bytes failed\n")
    (func (export "handler") (param $req i32) (result i32)
      (local $limit i32) (local $grown i32) (local $resp i32) (local $body i32)
      (if (i32.and
            (i32.load8_u offset=76 (local.get $req))
            (i32.ge_u (i32.load offset=84 (local.get $req)) (i32.const 4)))
        (then (local.set $limit (i32.load (i32.load offset=80 (local.get $req))))))
      (block $failed
        (loop $grow
          (if (i32.and (i32.ne (local.get $limit) (i32.const 0)) (i32.ge_u (local.get $grown) (local.get $limit)))
            (then
              (local.set $body (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 4)))
              (i32.store (local.get $body) (memory.size))
              (local.set $resp (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
              (i32.store16 (local.get $resp) (i32.const 200))
              (i32.store8 offset=12 (local.get $resp) (i32.const 1))
              (i32.store offset=16 (local.get $resp) (local.get $body))
              (i32.store offset=20 (local.get $resp) (i32.const 4))
              (return (local.get $resp))))
          (br_if $failed (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
          (local.set $grown (i32.add (local.get $grown) (i32.const 1)))
          (br $grow)))
      (call $write (call $get-stderr) (i32.const 1024) (i32.const 42) (i32.const 2048))
      unreachable))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "wasi" (instance (export "get-stderr" (func $get-stderr)) (export "write" (func $write))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
