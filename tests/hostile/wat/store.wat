;; store: storage writes that end badly. The first body byte picks what it does with the rest (the payload):
;;   'w'  put(namespace "hostile", key "k", value payload), then trap (`unreachable`);
;;   'l'  put(namespace "hostile", key "loop", 32 KiB all equal to i mod 256) for i = 1, 2, ... forever (only
;;        the deadline stops it);
;;   'r'  get(namespace "hostile", key payload): 200 with the value, or 404 with the error case (one byte).
;; Storage results are 8-aligned: the entry starts @8 (value @24) and the error case is @8.
(component $C
  ;; @include _alga_types.wat
  ;; @include _runtime.wat
  ;; @include _storage.wat
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "host" "storage-get" (func $storage-get (param i32 i32 i32 i32 i32)))
    (import "host" "storage-put" (func $storage-put (param i32 i32 i32 i32 i32 i32 i32 i64 i32)))
    (data (i32.const 1024) "hostile")
    (data (i32.const 1040) "k")
    (data (i32.const 1056) "loop")
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))
    (func $answer (param $status i32) (param $body i32) (param $len i32) (result i32)
      (local $resp i32)
      (local.set $resp (call $alloc (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (local.get $status))
      (i32.store8 offset=12 (local.get $resp) (i32.const 1))
      (i32.store offset=16 (local.get $resp) (local.get $body))
      (i32.store offset=20 (local.get $resp) (local.get $len))
      (local.get $resp))
    (func (export "handler") (param $req i32) (result i32)
      (local $body i32) (local $len i32) (local $mode i32) (local $r i32) (local $buf i32) (local $i i32)
      (if (i32.load8_u offset=76 (local.get $req))
        (then
          (local.set $body (i32.load offset=80 (local.get $req)))
          (local.set $len (i32.load offset=84 (local.get $req)))))
      (if (i32.eqz (local.get $len)) (then unreachable))
      (local.set $mode (i32.load8_u (local.get $body)))
      (local.set $body (i32.add (local.get $body) (i32.const 1)))
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (local.set $r (call $alloc (i32.const 8) (i32.const 64)))
      (if (i32.eq (local.get $mode) (i32.const 119))  ;; 'w'
        (then
          (call $storage-put (i32.const 1024) (i32.const 7) (i32.const 1040) (i32.const 1)
            (local.get $body) (local.get $len) (i32.const 0) (i64.const 0) (local.get $r))
          unreachable))
      (if (i32.eq (local.get $mode) (i32.const 108))  ;; 'l'
        (then
          (local.set $buf (call $alloc (i32.const 1) (i32.const 32768)))
          (loop $again
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (memory.fill (local.get $buf) (local.get $i) (i32.const 32768))
            (call $storage-put (i32.const 1024) (i32.const 7) (i32.const 1056) (i32.const 4)
              (local.get $buf) (i32.const 32768) (i32.const 0) (i64.const 0) (local.get $r))
            (br $again))))
      ;; 'r'
      (call $storage-get (i32.const 1024) (i32.const 7) (local.get $body) (local.get $len) (local.get $r))
      (if (result i32) (i32.load8_u (local.get $r))
        (then (call $answer (i32.const 404) (i32.add (local.get $r) (i32.const 8)) (i32.const 1)))
        (else (call $answer (i32.const 200) (i32.load offset=24 (local.get $r)) (i32.load offset=28 (local.get $r))))))
  )
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "host" (instance
      (export "storage-get" (func $storage-get))
      (export "storage-put" (func $storage-put))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
