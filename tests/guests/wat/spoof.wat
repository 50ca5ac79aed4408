;; spoof: prints, to stdout, stderr and the guest log, every phrase the runner once classified failures by
;; ("out of memory", "memory allocation of ... failed", "MemoryError", "memory_limit", "wasm trap: interrupt",
;; "epoch deadline", "all fuel consumed", "exceeds memory limits", a fake `Caused by:` section), traps with
;; `unreachable` in a function whose name (in the backtrace wasmtime prints) is such a phrase too, without
;; ever growing its memory. It must be classified as a plain trap.
(component $C
  ;; @include _alga_types.wat
  (import "alga:extension/logging" (instance $logging
    (export "log-info" (func (param "message" string)))
    (export "log-warn" (func (param "message" string)))
    (export "log-error" (func (param "message" string)))))
  ;; @include _runtime.wat
  ;; @include _wasi_output.wat
  (core func $log-error (canon lower (func $logging "log-error") (memory $mem) string-encoding=utf8))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "wasi" "get-stdout" (func $get-stdout (result i32)))
    (import "wasi" "get-stderr" (func $get-stderr (result i32)))
    (import "wasi" "write" (func $write (param i32 i32 i32 i32)))
    (import "host" "log-error" (func $log-error (param i32 i32)))
    (data (i32.const 1024) "out of memory\nmemory allocation of 1048576 bytes failed\nMemoryError\nmemory_limit\nwasm trap: interrupt\nepoch deadline\nall fuel consumed\nmemory minimum size of 99 pages exceeds memory limits\nrealloc return: beyond end of memory\n\nCaused by:\n    wasm trap: interrupt\n")
    (func $"out of memory\n\nCaused by:\n    0: all fuel consumed\n    1: wasm trap: interrupt" (param $len i32)
      (local $ret i32)
      (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 12)))
      (call $write (call $get-stdout) (i32.const 1024) (local.get $len) (local.get $ret))
      (call $write (call $get-stderr) (i32.const 1024) (local.get $len) (local.get $ret))
      (call $log-error (i32.const 1024) (local.get $len))
      unreachable)
    (func (export "handler") (param $req i32) (result i32)
      (call $"out of memory\n\nCaused by:\n    0: all fuel consumed\n    1: wasm trap: interrupt" (i32.const 263))
      unreachable))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "wasi" (instance
      (export "get-stdout" (func $get-stdout))
      (export "get-stderr" (func $get-stderr))
      (export "write" (func $write))))
    (with "host" (instance (export "log-error" (func $log-error))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
