  ;; Fragment: WASI stdout and stderr (@0.2.0), lowered into core functions $get-stdout, $get-stderr,
  ;; $write ([method]output-stream.blocking-write-and-flush: self, ptr, len, retptr) and
  ;; $drop-output-stream. Needs $mem (_runtime.wat).
  (import "wasi:io/error@0.2.0" (instance $io-error (export "error" (type (sub resource)))))
  (alias export $io-error "error" (type $io-error-type))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (alias outer $C $io-error-type (type $error))
    (export "error" (type $error-e (eq $error)))
    (export "output-stream" (type $output-stream-e (sub resource)))
    (type $stream-error (variant (case "last-operation-failed" (own $error-e)) (case "closed")))
    (export "stream-error" (type $stream-error-e (eq $stream-error)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" (borrow $output-stream-e)) (param "contents" (list u8))
        (result (result (error $stream-error-e)))))))
  (alias export $streams "output-stream" (type $output-stream))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (alias outer $C $output-stream (type $os))
    (export "output-stream" (type $os-e (eq $os)))
    (export "get-stdout" (func (result (own $os-e))))))
  (import "wasi:cli/stderr@0.2.0" (instance $stderr
    (alias outer $C $output-stream (type $os))
    (export "output-stream" (type $os-e (eq $os)))
    (export "get-stderr" (func (result (own $os-e))))))
  (core func $get-stdout (canon lower (func $stdout "get-stdout")))
  (core func $get-stderr (canon lower (func $stderr "get-stderr")))
  (core func $write
    (canon lower (func $streams "[method]output-stream.blocking-write-and-flush") (memory $mem)))
  (core func $drop-output-stream (canon resource.drop $output-stream))
