;; late: storage put(namespace "hostile", key "first", value "1"), then `logging.log-info("late host call")` and
;; put(namespace "hostile", key "late", value "1"); answers 200. When the first put returns after the
;; invocation's deadline (it waited for the database lock), the calls that follow come after the deadline.
(component $C
  ;; @include _alga_types.wat
  (import "alga:extension/logging" (instance $logging
    (export "log-info" (func (param "message" string)))))
  ;; @include _runtime.wat
  ;; @include _storage.wat
  (core func $log-info (canon lower (func $logging "log-info") (memory $mem) string-encoding=utf8))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "host" "log-info" (func $log-info (param i32 i32)))
    (import "host" "storage-put" (func $storage-put (param i32 i32 i32 i32 i32 i32 i32 i64 i32)))
    (data (i32.const 1024) "hostile")
    (data (i32.const 1040) "late")
    (data (i32.const 1056) "1")
    (data (i32.const 1072) "late host call")
    (data (i32.const 1088) "first")
    (func (export "handler") (param $req i32) (result i32)
      (local $r i32) (local $resp i32)
      (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 64)))
      (call $storage-put (i32.const 1024) (i32.const 7) (i32.const 1088) (i32.const 5)
        (i32.const 1056) (i32.const 1) (i32.const 0) (i64.const 0) (local.get $r))
      (call $log-info (i32.const 1072) (i32.const 14))
      (call $storage-put (i32.const 1024) (i32.const 7) (i32.const 1040) (i32.const 4)
        (i32.const 1056) (i32.const 1) (i32.const 0) (i64.const 0) (local.get $r))
      (local.set $resp (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "host" (instance
      (export "log-info" (func $log-info))
      (export "storage-put" (func $storage-put))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
