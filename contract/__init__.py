"""The contract between the gateway and the runner, used by both services and by ``extctl``.

What it holds, and nothing else:

- ``/v1/execute`` as typed values (:class:`ExecuteRequest`, :class:`ExecuteResult`) and their JSON codec;
- the codes on the wire (:class:`ErrorCode`, :class:`FailureKind`) and the invocation outcomes (:class:`Outcome`);
- the id grammar and the content-hash grammar (the latter owned by :mod:`bundles`, re-exported);
- the debug-stream layout: the Redis key, the entry fields, the JSON event a tail sends;
- signed ``/ext-ui`` URLs (:class:`UiUrlSigner`): the token the gateway issues and the runner verifies.

It imports no service package (``runner_trio``, ``gateway_quart``, ``extctl``), no quart and no wasmtime::

    payload = encode_execute_request(request)                          # the gateway
    request = decode_execute_json(raw, max_body_bytes=cap)             # the runner (orjson, size and depth
                                                                       # limits, then the typed request)
    if decode_execute_result(answer).timed_out: ...                    # the gateway again
"""

from ._codec import (
    MAX_GUEST_BODY_BYTES,
    MAX_JSON_DEPTH,
    decode_execute_json,
    decode_execute_request,
    decode_execute_result,
    encode_execute_request,
    encode_execute_result,
    execute_document_bytes,
    load_json,
)
from ._codes import ERROR_SEPARATOR, ErrorCode, FailureKind, Outcome, format_error, split_error
from ._debug_stream import (
    CONTEXT_FIELDS,
    DEFAULT_STREAM_PREFIX,
    JSON_NAMES,
    KEY_SEPARATOR,
    LEVELS,
    STREAMS,
    Level,
    Stream,
    entry_fields,
    entry_to_event,
    is_stream_key_part,
    parse_stream_key,
    stream_key,
)
from ._errors import BodyTooLarge, ContractError, InvalidBase64, InvalidField, InvalidStreamKey, UnknownCapabilities
from ._execute import (
    JOURNAL_POLICIES,
    USAGE_FIELDS,
    ExecuteRequest,
    ExecuteResult,
    HttpRequest,
    JournalPolicy,
    Limits,
    RequestContext,
    UserInfo,
    parse_journal_policy,
)
from ._grammar import (
    CONTENT_HASH_PREFIX,
    ID_PATTERN,
    MAX_ID_LENGTH,
    SAFE_ID_PATTERN,
    ContentHashError,
    format_content_hash,
    is_id,
    is_safe_id,
    parse_content_hash,
    parse_prefixed_content_hash,
)
from ._ui_token import UI_TOKEN_SEGMENT, UiUrlSigner, signed_ui_path, split_ui_token

__all__ = [
    "CONTENT_HASH_PREFIX",
    "CONTEXT_FIELDS",
    "DEFAULT_STREAM_PREFIX",
    "ERROR_SEPARATOR",
    "ID_PATTERN",
    "JOURNAL_POLICIES",
    "JSON_NAMES",
    "KEY_SEPARATOR",
    "LEVELS",
    "MAX_GUEST_BODY_BYTES",
    "MAX_ID_LENGTH",
    "MAX_JSON_DEPTH",
    "SAFE_ID_PATTERN",
    "STREAMS",
    "UI_TOKEN_SEGMENT",
    "USAGE_FIELDS",
    "BodyTooLarge",
    "ContentHashError",
    "ContractError",
    "ErrorCode",
    "ExecuteRequest",
    "ExecuteResult",
    "FailureKind",
    "HttpRequest",
    "InvalidBase64",
    "InvalidField",
    "InvalidStreamKey",
    "JournalPolicy",
    "Level",
    "Limits",
    "Outcome",
    "RequestContext",
    "Stream",
    "UiUrlSigner",
    "UnknownCapabilities",
    "UserInfo",
    "decode_execute_json",
    "decode_execute_request",
    "decode_execute_result",
    "encode_execute_request",
    "encode_execute_result",
    "entry_fields",
    "entry_to_event",
    "execute_document_bytes",
    "format_content_hash",
    "format_error",
    "is_id",
    "is_safe_id",
    "is_stream_key_part",
    "load_json",
    "parse_content_hash",
    "parse_journal_policy",
    "parse_prefixed_content_hash",
    "parse_stream_key",
    "signed_ui_path",
    "split_error",
    "split_ui_token",
    "stream_key",
]
