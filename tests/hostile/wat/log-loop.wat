;; log-loop: calls the host (`logging.log-info`) in a tight loop forever; only the deadline stops it.
(component $C
  ;; @include _alga_types.wat
  (import "alga:extension/logging" (instance $logging
    (export "log-info" (func (param "message" string)))))
  ;; @include _runtime.wat
  (core func $log-info (canon lower (func $logging "log-info") (memory $mem) string-encoding=utf8))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "host" "log-info" (func $log-info (param i32 i32)))
    (data (i32.const 1024) "again")
    (func (export "handler") (param $req i32) (result i32)
      (loop $forever
        (call $log-info (i32.const 1024) (i32.const 5))
        (br $forever))
      unreachable))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem))))
    (with "host" (instance (export "log-info" (func $log-info))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
