"""Property tests of the ``/v1/execute`` parser: any bytes, any JSON give a typed request or a ContractError.

``contract.decode_execute_json`` is what the runner's route calls on the raw body (orjson with a size and a
depth limit, then the typed decoding); ``decode_execute_request`` is its second half, on decoded data. Inputs:
arbitrary bytes, arbitrary JSON values, and documents shaped like an execute request whose every field holds
either a plausible value or arbitrary JSON, so the deep branches (context, http, limits, providers, user,
secret envelope) are reached. A decoded request must also encode and decode back to itself, since the gateway
builds its documents with the same codec.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bundles import KNOWN_CAPABILITIES
from contract import (
    MAX_JSON_DEPTH,
    ContractError,
    ExecuteRequest,
    decode_execute_json,
    decode_execute_request,
    encode_execute_request,
)
from tests.fuzz import FUZZ

CAP = 4096
HASH = "sha256:" + "ab" * 32
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from(["", " ", "\x00", "\ud800", "GET", "/x", "tenant-a", HASH, "cap:log.emit", "aGVsbG8="]),
)
JSON: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, valid, JSON)


_ID = st.one_of(st.sampled_from(["tenant-a", "ext-1", "a" * 200, "A.b_c-d", "x:y", ""]), st.text(max_size=10))
_STR_MAP = st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=6), JSON), max_size=3)
DOCUMENTS = st.fixed_dictionaries(
    {
        "context": _maybe(st.fixed_dictionaries(
            {"tenant_id": _maybe(_ID), "extension_id": _maybe(_ID),
             "content_hash": _maybe(st.sampled_from([HASH, "ab" * 32, "sha256:xyz", "md5:00"]))},
            optional={"request_id": _maybe(_ID), "install_id": _maybe(_ID), "version_id": JSON,
                      "config": _maybe(_STR_MAP)},
        )),
        "http": _maybe(st.fixed_dictionaries(
            {"method": _maybe(st.sampled_from(["GET", "post", "G E T", "A" * 17, ""]))},
            optional={"path": _maybe(st.text(max_size=10)), "query": _maybe(_STR_MAP), "headers": _maybe(_STR_MAP),
                      "body_b64": _maybe(st.one_of(
                          st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
                          st.sampled_from(["", "=", "!!!!", "a" * 10_000, "aGVsbG8"]),
                      ))},
        )),
    },
    optional={
        "limits": _maybe(st.fixed_dictionaries({}, optional={
            "timeout_ms": _maybe(st.integers()), "memory_mb": _maybe(st.integers()), "fuel": JSON})),
        "providers": _maybe(st.lists(st.sampled_from([*sorted(KNOWN_CAPABILITIES), "cap:teleport", ""]), max_size=4)),
        "secret_envelope": JSON,
        "user": _maybe(st.fixed_dictionaries({}, optional={
            "user_id": _maybe(_ID), "user_email": JSON, "additional_fields": _maybe(_STR_MAP), "client_id": JSON})),
    },
)


def _check(request: ExecuteRequest) -> None:
    again = decode_execute_request(encode_execute_request(request), max_body_bytes=CAP)
    assert again == request
    assert request.http.body is None or len(request.http.body) <= CAP


def _decode_raw(raw: bytes | str) -> None:
    try:
        request = decode_execute_json(raw, max_body_bytes=CAP)
    except ContractError:
        return  # the contract's error (with the field it names), and only it
    _check(request)


def _decode(doc: Any) -> None:
    try:
        request = decode_execute_request(doc, max_body_bytes=CAP)
    except ContractError:
        return
    _check(request)


@FUZZ
@given(st.binary(max_size=512))
@example(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
@example(b"[" * 100_000)
@example(b'{"a": ' + b"9" * 5000 + b"}")
@example(b"\xef\xbb\xbf{}")
@example(b'"\\ud800"')
@example(b"[18446744073709551616]")
@example(b"1e400")
def test_any_bytes(raw: bytes) -> None:
    _decode_raw(raw)


@FUZZ
@given(JSON)
def test_any_json(doc: Any) -> None:
    _decode(doc)
    _decode_raw(json.dumps(doc))


@FUZZ
@given(DOCUMENTS)
def test_execute_shaped_documents(doc: dict[str, Any]) -> None:
    _decode(doc)
    try:
        text = json.dumps(doc)
    except (TypeError, ValueError):
        return
    _decode_raw(text.encode("utf-8", "surrogatepass"))


def test_depth_and_size_limits_are_the_contracts_errors() -> None:
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    for raw, expected in ((deep, "nested deeper than 1024"), ("x" * (1 << 20), "exceeds")):
        with pytest.raises(ContractError, match=expected):
            decode_execute_json(raw, max_body_bytes=CAP)
