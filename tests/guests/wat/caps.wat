;; caps: calls every function of every `alga:extension` interface once, with fixed arguments, and answers 200
;; with one header per result: "<interface>.<function>" = "ok" or "err:<case index>" (or "ok"/"failed" for
;; functions returning a result record, with "<...>.error" = its error string), plus the values it received:
;; context.*, user.*, user-v2.* (and "user-v2.field.<key>" = value per additional field), secrets.get.value,
;; secrets.list-keys (count), http.fetch.status, storage.get.value / .revision.
;; Arguments: secrets.get("api-key"); storage get/delete("ns", "key"), put(ns, key, "value", no revision),
;; list-entries("ns", none); http.fetch(GET https://example.com/, no headers, no body); ui-proxy
;; call-route("/api/route", none); scheduler get/update/delete("s1"), create("/endpoint", "*/5 * * * *");
;; invoicing create(client "c1", no items); clients get("c1"); services get("svc1"); list inputs all none.
(component $C
  ;; @include _alga_types.wat
  (import "alga:extension/context" (instance $context
    (alias outer $C $context-data (type $t0))
    (export "context-data" (type $context-data-e (eq $t0)))
    (export "get-context" (func (result $context-data-e)))))
  (import "alga:extension/secrets" (instance $secrets
    (alias outer $C $secret-error (type $t0))
    (export "secret-error" (type $secret-error-e (eq $t0)))
    (export "get" (func (param "key" string) (result (result string (error $secret-error-e)))))
    (export "list-keys" (func (result (list string))))))
  (import "alga:extension/http" (instance $http
    (alias outer $C $http-request (type $t0))
    (export "http-request" (type $http-request-e (eq $t0)))
    (alias outer $C $http-response (type $t1))
    (export "http-response" (type $http-response-e (eq $t1)))
    (alias outer $C $http-error (type $t2))
    (export "http-error" (type $http-error-e (eq $t2)))
    (export "fetch"
      (func (param "request" $http-request-e) (result (result $http-response-e (error $http-error-e)))))))
  (import "alga:extension/storage" (instance $storage
    (alias outer $C $storage-entry (type $t0))
    (export "storage-entry" (type $storage-entry-e (eq $t0)))
    (alias outer $C $storage-error (type $t1))
    (export "storage-error" (type $storage-error-e (eq $t1)))
    (export "get" (func (param "namespace" string) (param "key" string)
      (result (result $storage-entry-e (error $storage-error-e)))))
    (export "put" (func (param "entry" $storage-entry-e)
      (result (result $storage-entry-e (error $storage-error-e)))))
    (export "delete" (func (param "namespace" string) (param "key" string)
      (result (result (error $storage-error-e)))))
    (export "list-entries" (func (param "namespace" string) (param "cursor" (option string))
      (result (result (list $storage-entry-e) (error $storage-error-e)))))))
  (import "alga:extension/logging" (instance $logging
    (export "log-info" (func (param "message" string)))
    (export "log-warn" (func (param "message" string)))
    (export "log-error" (func (param "message" string)))))
  (import "alga:extension/ui-proxy" (instance $ui-proxy
    (alias outer $C $proxy-error (type $t0))
    (export "proxy-error" (type $proxy-error-e (eq $t0)))
    (export "call-route" (func (param "route" string) (param "payload" (option (list u8)))
      (result (result (list u8) (error $proxy-error-e)))))))
  (import "alga:extension/user" (instance $user
    (alias outer $C $user-data (type $t0))
    (export "user-data" (type $user-data-e (eq $t0)))
    (alias outer $C $user-error (type $t1))
    (export "user-error" (type $user-error-e (eq $t1)))
    (export "get-user" (func (result (result $user-data-e (error $user-error-e)))))))
  (import "alga:extension/user-v2" (instance $user-v2
    (alias outer $C $user-data-v2 (type $t0))
    (export "user-data-v2" (type $user-data-v2-e (eq $t0)))
    (alias outer $C $user-error (type $t1))
    (export "user-error" (type $user-error-e (eq $t1)))
    (export "get-user" (func (result (result $user-data-v2-e (error $user-error-e)))))))
  (import "alga:extension/scheduler" (instance $scheduler
    (alias outer $C $scheduler-error (type $t0))
    (export "scheduler-error" (type $scheduler-error-e (eq $t0)))
    (alias outer $C $schedule-info (type $t1))
    (export "schedule-info" (type $schedule-info-e (eq $t1)))
    (alias outer $C $endpoint-info (type $t2))
    (export "endpoint-info" (type $endpoint-info-e (eq $t2)))
    (alias outer $C $create-schedule-input (type $t3))
    (export "create-schedule-input" (type $create-schedule-input-e (eq $t3)))
    (alias outer $C $create-schedule-result (type $t4))
    (export "create-schedule-result" (type $create-schedule-result-e (eq $t4)))
    (alias outer $C $update-schedule-input (type $t5))
    (export "update-schedule-input" (type $update-schedule-input-e (eq $t5)))
    (alias outer $C $update-schedule-result (type $t6))
    (export "update-schedule-result" (type $update-schedule-result-e (eq $t6)))
    (alias outer $C $delete-schedule-result (type $t7))
    (export "delete-schedule-result" (type $delete-schedule-result-e (eq $t7)))
    (export "list-schedules" (func (result (result (list $schedule-info-e) (error $scheduler-error-e)))))
    (export "get-schedule" (func (param "schedule-id" string)
      (result (result (option $schedule-info-e) (error $scheduler-error-e)))))
    (export "create-schedule" (func (param "input" $create-schedule-input-e) (result $create-schedule-result-e)))
    (export "update-schedule" (func (param "schedule-id" string) (param "input" $update-schedule-input-e)
      (result $update-schedule-result-e)))
    (export "delete-schedule" (func (param "schedule-id" string) (result $delete-schedule-result-e)))
    (export "get-endpoints" (func (result (result (list $endpoint-info-e) (error $scheduler-error-e)))))))
  (import "alga:extension/invoicing" (instance $invoicing
    (alias outer $C $create-manual-invoice-input (type $t0))
    (export "create-manual-invoice-input" (type $input-e (eq $t0)))
    (alias outer $C $create-manual-invoice-result (type $t1))
    (export "create-manual-invoice-result" (type $result-e (eq $t1)))
    (export "create-manual-invoice" (func (param "input" $input-e) (result $result-e)))))
  (import "alga:extension/clients" (instance $clients
    (alias outer $C $client-read-error (type $t0))
    (export "client-read-error" (type $client-read-error-e (eq $t0)))
    (alias outer $C $client-summary (type $t1))
    (export "client-summary" (type $client-summary-e (eq $t1)))
    (alias outer $C $clients-list-input (type $t2))
    (export "clients-list-input" (type $clients-list-input-e (eq $t2)))
    (alias outer $C $clients-list-result (type $t3))
    (export "clients-list-result" (type $clients-list-result-e (eq $t3)))
    (export "list-clients" (func (param "input" $clients-list-input-e)
      (result (result $clients-list-result-e (error $client-read-error-e)))))
    (export "get-client" (func (param "client-id" string)
      (result (result (option $client-summary-e) (error $client-read-error-e)))))))
  (import "alga:extension/services" (instance $services
    (alias outer $C $service-read-error (type $t0))
    (export "service-read-error" (type $service-read-error-e (eq $t0)))
    (alias outer $C $service-summary (type $t1))
    (export "service-summary" (type $service-summary-e (eq $t1)))
    (alias outer $C $services-list-input (type $t2))
    (export "services-list-input" (type $services-list-input-e (eq $t2)))
    (alias outer $C $services-list-result (type $t3))
    (export "services-list-result" (type $services-list-result-e (eq $t3)))
    (export "list-services" (func (param "input" $services-list-input-e)
      (result (result $services-list-result-e (error $service-read-error-e)))))
    (export "get-service" (func (param "service-id" string)
      (result (result (option $service-summary-e) (error $service-read-error-e)))))))
  ;; @include _runtime.wat
  (core func $get-context (canon lower (func $context "get-context") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $log-info (canon lower (func $logging "log-info") (memory $mem) string-encoding=utf8))
  (core func $get-user (canon lower (func $user "get-user") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $get-user-v2 (canon lower (func $user-v2 "get-user") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $secrets-get (canon lower (func $secrets "get") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $secrets-list-keys (canon lower (func $secrets "list-keys") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $http-fetch (canon lower (func $http "fetch") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $storage-get (canon lower (func $storage "get") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $storage-put (canon lower (func $storage "put") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $storage-delete (canon lower (func $storage "delete") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $storage-list (canon lower (func $storage "list-entries") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $call-route (canon lower (func $ui-proxy "call-route") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $list-schedules (canon lower (func $scheduler "list-schedules") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $get-schedule (canon lower (func $scheduler "get-schedule") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $create-schedule (canon lower (func $scheduler "create-schedule") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $update-schedule (canon lower (func $scheduler "update-schedule") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $delete-schedule (canon lower (func $scheduler "delete-schedule") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $get-endpoints (canon lower (func $scheduler "get-endpoints") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $create-invoice (canon lower (func $invoicing "create-manual-invoice") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $list-clients (canon lower (func $clients "list-clients") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $get-client (canon lower (func $clients "get-client") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $list-services (canon lower (func $services "list-services") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core func $get-service (canon lower (func $services "get-service") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (core module $main
    (import "rt" "memory" (memory 1))
    (import "rt" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
    (import "host" "get-context" (func $get-context (param i32)))
    (import "host" "log-info" (func $log-info (param i32 i32)))
    (import "host" "get-user" (func $get-user (param i32)))
    (import "host" "get-user-v2" (func $get-user-v2 (param i32)))
    (import "host" "secrets-get" (func $secrets-get (param i32 i32 i32)))
    (import "host" "secrets-list-keys" (func $secrets-list-keys (param i32)))
    (import "host" "http-fetch" (func $http-fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "storage-get" (func $storage-get (param i32 i32 i32 i32 i32)))
    (import "host" "storage-put" (func $storage-put (param i32 i32 i32 i32 i32 i32 i32 i64 i32)))
    (import "host" "storage-delete" (func $storage-delete (param i32 i32 i32 i32 i32)))
    (import "host" "storage-list" (func $storage-list (param i32 i32 i32 i32 i32 i32)))
    (import "host" "call-route" (func $call-route (param i32 i32 i32 i32 i32 i32)))
    (import "host" "list-schedules" (func $list-schedules (param i32)))
    (import "host" "get-schedule" (func $get-schedule (param i32 i32 i32)))
    (import "host" "create-schedule"
      (func $create-schedule (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "update-schedule" (func $update-schedule (param i32 i32)))
    (import "host" "delete-schedule" (func $delete-schedule (param i32 i32 i32)))
    (import "host" "get-endpoints" (func $get-endpoints (param i32)))
    (import "host" "create-invoice"
      (func $create-invoice (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "list-clients" (func $list-clients (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "get-client" (func $get-client (param i32 i32 i32)))
    (import "host" "list-services"
      (func $list-services (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "get-service" (func $get-service (param i32 i32 i32)))
    (global $hdrs (mut i32) (i32.const 0))
    (global $count (mut i32) (i32.const 0))
    ;; String slot k lives at 1024 + 64 k, NUL-terminated (memory starts zeroed).
    (data (i32.const 1024) "ok")  ;; 0
    (data (i32.const 1088) "err:")  ;; 1
    (data (i32.const 1152) "failed")  ;; 2
    (data (i32.const 1216) "context.request-id")  ;; 3
    (data (i32.const 1280) "context.tenant-id")  ;; 4
    (data (i32.const 1344) "context.extension-id")  ;; 5
    (data (i32.const 1408) "context.install-id")  ;; 6
    (data (i32.const 1472) "context.version-id")  ;; 7
    (data (i32.const 1536) "hello from the caps guest")  ;; 8
    (data (i32.const 1600) "user.get-user")  ;; 9
    (data (i32.const 1664) "user.user-id")  ;; 10
    (data (i32.const 1728) "user.user-name")  ;; 11
    (data (i32.const 1792) "user.user-email")  ;; 12
    (data (i32.const 1856) "user.client-name")  ;; 13
    (data (i32.const 1920) "user.user-type")  ;; 14
    (data (i32.const 1984) "user.tenant-id")  ;; 15
    (data (i32.const 2048) "user-v2.get-user")  ;; 16
    (data (i32.const 2112) "user-v2.client-id")  ;; 17
    (data (i32.const 2176) "user-v2.additional-fields")  ;; 18
    (data (i32.const 2240) "secrets.get")  ;; 19
    (data (i32.const 2304) "secrets.get.value")  ;; 20
    (data (i32.const 2368) "secrets.list-keys")  ;; 21
    (data (i32.const 2432) "http.fetch")  ;; 22
    (data (i32.const 2496) "http.fetch.status")  ;; 23
    (data (i32.const 2560) "storage.get")  ;; 24
    (data (i32.const 2624) "storage.get.value")  ;; 25
    (data (i32.const 2688) "storage.put")  ;; 26
    (data (i32.const 2752) "storage.delete")  ;; 27
    (data (i32.const 2816) "storage.list-entries")  ;; 28
    (data (i32.const 2880) "ui-proxy.call-route")  ;; 29
    (data (i32.const 2944) "scheduler.list-schedules")  ;; 30
    (data (i32.const 3008) "scheduler.get-schedule")  ;; 31
    (data (i32.const 3072) "scheduler.create-schedule")  ;; 32
    (data (i32.const 3136) "scheduler.create-schedule.error")  ;; 33
    (data (i32.const 3200) "scheduler.update-schedule")  ;; 34
    (data (i32.const 3264) "scheduler.update-schedule.error")  ;; 35
    (data (i32.const 3328) "scheduler.delete-schedule")  ;; 36
    (data (i32.const 3392) "scheduler.delete-schedule.error")  ;; 37
    (data (i32.const 3456) "scheduler.get-endpoints")  ;; 38
    (data (i32.const 3520) "invoicing.create-manual-invoice")  ;; 39
    (data (i32.const 3584) "invoicing.create-manual-invoice.error")  ;; 40
    (data (i32.const 3648) "clients.list-clients")  ;; 41
    (data (i32.const 3712) "clients.get-client")  ;; 42
    (data (i32.const 3776) "services.list-services")  ;; 43
    (data (i32.const 3840) "services.get-service")  ;; 44
    (data (i32.const 3904) "api-key")  ;; 45
    (data (i32.const 3968) "ns")  ;; 46
    (data (i32.const 4032) "key")  ;; 47
    (data (i32.const 4096) "value")  ;; 48
    (data (i32.const 4160) "GET")  ;; 49
    (data (i32.const 4224) "https://example.com/")  ;; 50
    (data (i32.const 4288) "/api/route")  ;; 51
    (data (i32.const 4352) "s1")  ;; 52
    (data (i32.const 4416) "/endpoint")  ;; 53
    (data (i32.const 4480) "*/5 * * * *")  ;; 54
    (data (i32.const 4544) "c1")  ;; 55
    (data (i32.const 4608) "svc1")  ;; 56
    (data (i32.const 4672) "user-v2.field.")  ;; 57
    (data (i32.const 4736) "storage.get.revision")  ;; 58
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (call $realloc (i32.const 0) (i32.const 0) (local.get $align) (local.get $size)))
    (func $strlen (param $p i32) (result i32)
      (local $n i32)
      (block $end
        (loop $next
          (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (br $next)))
      (local.get $n))
    ;; (ptr, len) of string slot k
    (func $s (param $k i32) (result i32 i32)
      (local $p i32)
      (local.set $p (i32.add (i32.const 1024) (i32.shl (local.get $k) (i32.const 6))))
      (local.get $p)
      (call $strlen (local.get $p)))
    (func $cat (param $p1 i32) (param $l1 i32) (param $p2 i32) (param $l2 i32) (result i32 i32)
      (local $p i32)
      (local.set $p (call $alloc (i32.const 1) (i32.add (local.get $l1) (local.get $l2))))
      (memory.copy (local.get $p) (local.get $p1) (local.get $l1))
      (memory.copy (i32.add (local.get $p) (local.get $l1)) (local.get $p2) (local.get $l2))
      (local.get $p)
      (i32.add (local.get $l1) (local.get $l2)))
    ;; decimal digits of n
    (func $fmt (param $n i32) (result i32 i32)
      (local $buf i32) (local $i i32)
      (local.set $buf (call $alloc (i32.const 1) (i32.const 10)))
      (local.set $i (i32.const 10))
      (loop $digit
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (i32.store8 (i32.add (local.get $buf) (local.get $i))
          (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
        (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
        (br_if $digit (local.get $n)))
      (i32.add (local.get $buf) (local.get $i))
      (i32.sub (i32.const 10) (local.get $i)))
    (func $emit (param $np i32) (param $nl i32) (param $vp i32) (param $vl i32)
      (local $at i32)
      (local.set $at (i32.add (global.get $hdrs) (i32.shl (global.get $count) (i32.const 4))))
      (i32.store (local.get $at) (local.get $np))
      (i32.store offset=4 (local.get $at) (local.get $nl))
      (i32.store offset=8 (local.get $at) (local.get $vp))
      (i32.store offset=12 (local.get $at) (local.get $vl))
      (global.set $count (i32.add (global.get $count) (i32.const 1))))
    (func $emit-num (param $k i32) (param $n i32)
      (call $emit (call $s (local.get $k)) (call $fmt (local.get $n))))
    ;; "ok" when the byte at $disc is 0, else "err:<byte at $case>"
    (func $emit-code (param $k i32) (param $disc i32) (param $case i32)
      (if (i32.eqz (i32.load8_u (local.get $disc)))
        (then (call $emit (call $s (local.get $k)) (call $s (i32.const 0))))
        (else
          (call $emit (call $s (local.get $k))
            (call $cat (call $s (i32.const 1)) (call $fmt (i32.load8_u (local.get $case))))))))
    ;; the string (ptr, len) stored at $at
    (func $emit-str (param $k i32) (param $at i32)
      (call $emit (call $s (local.get $k)) (i32.load (local.get $at)) (i32.load offset=4 (local.get $at))))
    ;; the option<string> stored at $at, when present
    (func $emit-opt (param $k i32) (param $at i32)
      (if (i32.load8_u (local.get $at))
        (then (call $emit-str (local.get $k) (i32.add (local.get $at) (i32.const 4))))))
    ;; a result record: success bool at $at, error option<string> at $at + $error-offset
    (func $emit-result-record (param $k i32) (param $k-error i32) (param $at i32) (param $error-offset i32)
      (if (i32.load8_u (local.get $at))
        (then (call $emit (call $s (local.get $k)) (call $s (i32.const 0))))
        (else (call $emit (call $s (local.get $k)) (call $s (i32.const 2)))))
      (call $emit-opt (local.get $k-error) (i32.add (local.get $at) (local.get $error-offset))))
    ;; a fresh, zeroed return area
    (func $ret (result i32)
      (call $alloc (i32.const 8) (i32.const 128)))

    (func (export "handler") (param $req i32) (result i32)
      (local $r i32) (local $args i32) (local $n i32) (local $i i32) (local $e i32) (local $resp i32)
      (global.set $hdrs (call $alloc (i32.const 4) (i32.const 2048)))
      (global.set $count (i32.const 0))
      ;; context: request-id @0, tenant-id @12, extension-id @20, install-id @28, version-id @40
      (local.set $r (call $ret))
      (call $get-context (local.get $r))
      (call $emit-opt (i32.const 3) (local.get $r))
      (call $emit-str (i32.const 4) (i32.add (local.get $r) (i32.const 12)))
      (call $emit-str (i32.const 5) (i32.add (local.get $r) (i32.const 20)))
      (call $emit-opt (i32.const 6) (i32.add (local.get $r) (i32.const 28)))
      (call $emit-opt (i32.const 7) (i32.add (local.get $r) (i32.const 40)))
      ;; logging
      (call $log-info (call $s (i32.const 8)))
      ;; user: result disc @0; user-data @4 (tenant, client-name, user-id, email, name, type: 8 bytes each)
      (local.set $r (call $ret))
      (call $get-user (local.get $r))
      (call $emit-code (i32.const 9) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      (if (i32.eqz (i32.load8_u (local.get $r)))
        (then
          (call $emit-str (i32.const 15) (i32.add (local.get $r) (i32.const 4)))
          (call $emit-str (i32.const 13) (i32.add (local.get $r) (i32.const 12)))
          (call $emit-str (i32.const 10) (i32.add (local.get $r) (i32.const 20)))
          (call $emit-str (i32.const 12) (i32.add (local.get $r) (i32.const 28)))
          (call $emit-str (i32.const 11) (i32.add (local.get $r) (i32.const 36)))
          (call $emit-str (i32.const 14) (i32.add (local.get $r) (i32.const 44)))))
      ;; user-v2: as user, then client-id option @52, additional-fields list @64
      (local.set $r (call $ret))
      (call $get-user-v2 (local.get $r))
      (call $emit-code (i32.const 16) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      (if (i32.eqz (i32.load8_u (local.get $r)))
        (then
          (call $emit-opt (i32.const 17) (i32.add (local.get $r) (i32.const 52)))
          (local.set $n (i32.load offset=68 (local.get $r)))
          (call $emit-num (i32.const 18) (local.get $n))
          (local.set $e (i32.load offset=64 (local.get $r)))
          (block $done
            (loop $field
              (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
              (call $emit
                (call $cat (call $s (i32.const 57)) (i32.load (local.get $e)) (i32.load offset=4 (local.get $e)))
                (i32.load offset=8 (local.get $e))
                (i32.load offset=12 (local.get $e)))
              (local.set $e (i32.add (local.get $e) (i32.const 16)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $field)))))
      ;; secrets: result<string, secret-error>: disc @0, payload @4
      (local.set $r (call $ret))
      (call $secrets-get (call $s (i32.const 45)) (local.get $r))
      (call $emit-code (i32.const 19) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      (if (i32.eqz (i32.load8_u (local.get $r)))
        (then (call $emit-str (i32.const 20) (i32.add (local.get $r) (i32.const 4)))))
      (local.set $r (call $ret))
      (call $secrets-list-keys (local.get $r))
      (call $emit-num (i32.const 21) (i32.load offset=4 (local.get $r)))
      ;; http: request flattened (method, url, headers, body option); result payload @4 (status u16 first)
      (local.set $r (call $ret))
      (call $http-fetch (call $s (i32.const 49)) (call $s (i32.const 50))
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (local.get $r))
      (call $emit-code (i32.const 22) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      (if (i32.eqz (i32.load8_u (local.get $r)))
        (then (call $emit-num (i32.const 23) (i32.load16_u offset=4 (local.get $r)))))
      ;; storage: storage-entry is 8-aligned (u64), so payloads start @8: value @24, revision option @32/@40
      (local.set $r (call $ret))
      (call $storage-get (call $s (i32.const 46)) (call $s (i32.const 47)) (local.get $r))
      (call $emit-code (i32.const 24) (local.get $r) (i32.add (local.get $r) (i32.const 8)))
      (if (i32.eqz (i32.load8_u (local.get $r)))
        (then
          (call $emit-str (i32.const 25) (i32.add (local.get $r) (i32.const 24)))
          (if (i32.load8_u offset=32 (local.get $r))
            (then (call $emit-num (i32.const 58) (i32.wrap_i64 (i64.load offset=40 (local.get $r))))))))
      (local.set $r (call $ret))
      (call $storage-put (call $s (i32.const 46)) (call $s (i32.const 47)) (call $s (i32.const 48))
        (i32.const 0) (i64.const 0) (local.get $r))
      (call $emit-code (i32.const 26) (local.get $r) (i32.add (local.get $r) (i32.const 8)))
      (local.set $r (call $ret))
      (call $storage-delete (call $s (i32.const 46)) (call $s (i32.const 47)) (local.get $r))
      (call $emit-code (i32.const 27) (local.get $r) (i32.add (local.get $r) (i32.const 1)))
      (local.set $r (call $ret))
      (call $storage-list (call $s (i32.const 46)) (i32.const 0) (i32.const 0) (i32.const 0) (local.get $r))
      (call $emit-code (i32.const 28) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      ;; ui-proxy
      (local.set $r (call $ret))
      (call $call-route (call $s (i32.const 51)) (i32.const 0) (i32.const 0) (i32.const 0) (local.get $r))
      (call $emit-code (i32.const 29) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      ;; scheduler
      (local.set $r (call $ret))
      (call $list-schedules (local.get $r))
      (call $emit-code (i32.const 30) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      (local.set $r (call $ret))
      (call $get-schedule (call $s (i32.const 52)) (local.get $r))
      (call $emit-code (i32.const 31) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      (local.set $r (call $ret))
      (call $create-schedule (call $s (i32.const 53)) (call $s (i32.const 54))
        (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0)
        (local.get $r))
      (call $emit-result-record (i32.const 32) (i32.const 33) (local.get $r) (i32.const 16))
      ;; update-schedule has 19 flat parameters (> 16): they go through memory, as a tuple
      ;; (schedule-id @0, update-schedule-input @8: every field none)
      (local.set $args (call $alloc (i32.const 4) (i32.const 72)))
      (call $s (i32.const 52))
      (local.set $n)
      (local.set $e)
      (i32.store (local.get $args) (local.get $e))
      (i32.store offset=4 (local.get $args) (local.get $n))
      (local.set $r (call $ret))
      (call $update-schedule (local.get $args) (local.get $r))
      (call $emit-result-record (i32.const 34) (i32.const 35) (local.get $r) (i32.const 4))
      (local.set $r (call $ret))
      (call $delete-schedule (call $s (i32.const 52)) (local.get $r))
      (call $emit-result-record (i32.const 36) (i32.const 37) (local.get $r) (i32.const 4))
      (local.set $r (call $ret))
      (call $get-endpoints (local.get $r))
      (call $emit-code (i32.const 38) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      ;; invoicing: the result record is 8-aligned; error option<string> @88
      (local.set $r (call $ret))
      (call $create-invoice (call $s (i32.const 55)) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0)
        (local.get $r))
      (call $emit-result-record (i32.const 39) (i32.const 40) (local.get $r) (i32.const 88))
      ;; clients
      (local.set $r (call $ret))
      (call $list-clients (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (local.get $r))
      (call $emit-code (i32.const 41) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      (local.set $r (call $ret))
      (call $get-client (call $s (i32.const 55)) (local.get $r))
      (call $emit-code (i32.const 42) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      ;; services: option<service-summary> is 8-aligned (f64), so get-service's payload starts @8
      (local.set $r (call $ret))
      (call $list-services (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (local.get $r))
      (call $emit-code (i32.const 43) (local.get $r) (i32.add (local.get $r) (i32.const 4)))
      (local.set $r (call $ret))
      (call $get-service (call $s (i32.const 56)) (local.get $r))
      (call $emit-code (i32.const 44) (local.get $r) (i32.add (local.get $r) (i32.const 8)))
      ;; execute-response: status @0, headers @4, body none
      (local.set $resp (call $alloc (i32.const 4) (i32.const 24)))
      (i32.store16 (local.get $resp) (i32.const 200))
      (i32.store offset=4 (local.get $resp) (global.get $hdrs))
      (i32.store offset=8 (local.get $resp) (global.get $count))
      (local.get $resp)))
  (core instance $i (instantiate $main
    (with "rt" (instance (export "memory" (memory $mem)) (export "realloc" (func $realloc))))
    (with "host" (instance
      (export "get-context" (func $get-context))
      (export "log-info" (func $log-info))
      (export "get-user" (func $get-user))
      (export "get-user-v2" (func $get-user-v2))
      (export "secrets-get" (func $secrets-get))
      (export "secrets-list-keys" (func $secrets-list-keys))
      (export "http-fetch" (func $http-fetch))
      (export "storage-get" (func $storage-get))
      (export "storage-put" (func $storage-put))
      (export "storage-delete" (func $storage-delete))
      (export "storage-list" (func $storage-list))
      (export "call-route" (func $call-route))
      (export "list-schedules" (func $list-schedules))
      (export "get-schedule" (func $get-schedule))
      (export "create-schedule" (func $create-schedule))
      (export "update-schedule" (func $update-schedule))
      (export "delete-schedule" (func $delete-schedule))
      (export "get-endpoints" (func $get-endpoints))
      (export "create-invoice" (func $create-invoice))
      (export "list-clients" (func $list-clients))
      (export "get-client" (func $get-client))
      (export "list-services" (func $list-services))
      (export "get-service" (func $get-service))))))
  (func (export "handler") (param "request" $execute-request) (result $execute-response)
    (canon lift (core func $i "handler") (memory $mem) (realloc $realloc) string-encoding=utf8))
)
