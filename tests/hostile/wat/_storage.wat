  ;; Fragment: `alga:extension/storage` get and put, lowered into $storage-get and $storage-put. Needs $mem and
  ;; $realloc (_runtime.wat) and the types (_alga_types.wat).
  (import "alga:extension/storage" (instance $storage
    (alias outer $C $storage-entry (type $t0))
    (export "storage-entry" (type $storage-entry-e (eq $t0)))
    (alias outer $C $storage-error (type $t1))
    (export "storage-error" (type $storage-error-e (eq $t1)))
    (export "get" (func (param "namespace" string) (param "key" string)
      (result (result $storage-entry-e (error $storage-error-e)))))
    (export "put" (func (param "entry" $storage-entry-e)
      (result (result $storage-entry-e (error $storage-error-e)))))))
  (core func $storage-get (canon lower (func $storage "get") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $storage-put (canon lower (func $storage "put") (memory $mem) (realloc $realloc) string-encoding=utf8))
