;; fetch: `http.fetch` GET of each URL of the body (one per line, '\n'-separated, no headers, no body), then
;; answers 200 with 4 bytes per URL: 0, the status (u16 little-endian), 0 when the fetch returned a response;
;; 1, the `http-error` case (0 invalid-url, 1 not-allowed, 2 transport, 3 internal), 0, 0 when it failed.
(component $C
  ;; @include _alga_types.wat
  (import "alga:extension/http" (instance $http
    (alias outer $C $http-request (type $t0))
    (export "http-request" (type $http-request-e (eq $t0)))
    (alias outer $C $http-response (type $t1))
    (export "http-response" (type $http-response-e (eq $t1)))
    (alias outer $C $http-error (type $t2))
    (export "http-error" (type $http-error-e (eq $t2)))
    (export "fetch"
      (func (param "request" $http-request-e) (result (result $http-response-e (error $http-error-e)))))))
  ;; @include _runtime.wat
  (core func $http-fetch (canon lower (func $http "fetch") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "host" "http-fetch" (func $http-fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (data (i32.const 1024) "GET")
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))
    (func (export "handler") (param $req i32) (result i32)
      (local $p i32) (local $end i32) (local $start i32) (local $out i32) (local $n i32) (local $r i32)
      (local $resp i32)
      (if (i32.load8_u offset=76 (local.get $req))
        (then
          (local.set $p (i32.load offset=80 (local.get $req)))
          (local.set $end (i32.add (local.get $p) (i32.load offset=84 (local.get $req))))))
      (local.set $out (call $alloc (i32.const 4) (i32.const 1024)))
      (local.set $r (call $alloc (i32.const 8) (i32.const 64)))
      (block $done
        (loop $url
          (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
          (local.set $start (local.get $p))
          (block $eol
            (loop $scan
              (br_if $eol (i32.ge_u (local.get $p) (local.get $end)))
              (br_if $eol (i32.eq (i32.load8_u (local.get $p)) (i32.const 10)))
              (local.set $p (i32.add (local.get $p) (i32.const 1)))
              (br $scan)))
          (call $http-fetch (i32.const 1024) (i32.const 3)
            (local.get $start) (i32.sub (local.get $p) (local.get $start))
            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (local.get $r))
          (i32.store
            (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2)))
            (if (result i32) (i32.load8_u (local.get $r))
              (then (i32.add (i32.const 1) (i32.shl (i32.load8_u offset=4 (local.get $r)) (i32.const 8))))
              (else (i32.shl (i32.load16_u offset=4 (local.get $r)) (i32.const 8)))))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $url)))
      (local.set $resp (call $alloc (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (i32.store8 offset=12 (local.get $resp) (i32.const 1))
      (i32.store offset=16 (local.get $resp) (local.get $out))
      (i32.store offset=20 (local.get $resp) (i32.shl (local.get $n) (i32.const 2)))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "host" (instance (export "http-fetch" (func $http-fetch))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
