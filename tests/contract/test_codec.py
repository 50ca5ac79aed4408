"""The ``/v1/execute`` codec: round trips, today's JSON byte for byte, and field-path errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import contract
from contract import ExecuteRequest, ExecuteResult, HttpRequest, Limits, RequestContext, UserInfo

HEX = "ab" * 32
CAP = 1024 * 1024


def gateway_payload_before_contract(*, body: bytes | None, client_id: str | None,
                                    envelope: dict[str, Any] | None) -> dict[str, Any]:
    """The dict ``gateway_quart._proxy`` built by hand until it built on contract (copied from that code)."""
    user_info: dict[str, Any] = {
        "user_id": "usr-1",
        "user_email": "ann@example.com",
        "user_name": "Ann",
        "user_type": "internal",
        "client_name": "",
        "additional_fields": {},
    }
    if client_id is not None:
        user_info["client_id"] = client_id
    return {
        "context": {
            "request_id": "req-1",
            "tenant_id": "acme",
            "extension_id": "echo",
            "install_id": "ins-1",
            "content_hash": f"sha256:{HEX}",
            "version_id": "ver-1",
            "config": {"GREETING": "hello"},
        },
        "http": {
            "method": "POST",
            "path": "/items/42",
            "query": {"a": "3", "b": "2"},
            "headers": {"accept": "application/json", "x-request-id": "req-1"},
            "body_b64": base64.b64encode(body).decode("ascii") if body is not None else None,
        },
        "limits": {"timeout_ms": 5000},
        "providers": sorted(["cap:secrets.get", "cap:http.fetch"]),
        "secret_envelope": envelope,
        "user": user_info,
    }


def gateway_request(*, body: bytes | None, client_id: str | None, envelope: dict[str, Any] | None) -> ExecuteRequest:
    """The same call as the gateway builds it now."""
    return ExecuteRequest(
        context=RequestContext(request_id="req-1", tenant_id="acme", extension_id="echo", install_id="ins-1",
                               content_hash=HEX, version_id="ver-1", config={"GREETING": "hello"}),
        http=HttpRequest(method="POST", path="/items/42", query={"a": "3", "b": "2"},
                         headers={"accept": "application/json", "x-request-id": "req-1"}, body=body),
        limits=Limits(timeout_ms=5000),
        providers=frozenset({"cap:secrets.get", "cap:http.fetch"}),
        secret_envelope=envelope,
        user=UserInfo(user_id="usr-1", user_email="ann@example.com", user_name="Ann", user_type="internal",
                      client_name="", client_id=client_id),
    )


ENVELOPE = {"algorithm": "x25519-chacha20poly1305:v1", "ciphertext_b64": "AAEC", "version": "1"}
VARIANTS = [
    {"body": None, "client_id": None, "envelope": None},
    {"body": b"", "client_id": None, "envelope": None},
    {"body": b"hello \x00\xff", "client_id": "cli-9", "envelope": ENVELOPE},
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_encodes_exactly_what_the_gateway_sent_before(variant: dict[str, Any]) -> None:
    before = json.dumps(gateway_payload_before_contract(**variant))
    assert json.dumps(contract.encode_execute_request(gateway_request(**variant))) == before


@pytest.mark.parametrize("variant", VARIANTS)
def test_request_round_trips(variant: dict[str, Any]) -> None:
    request = gateway_request(**variant)
    encoded = contract.encode_execute_request(request)
    assert contract.decode_execute_request(encoded, max_body_bytes=CAP) == request
    # Through the JSON text too, and the text is a fixed point.
    text = json.dumps(encoded)
    again = contract.decode_execute_request(json.loads(text), max_body_bytes=CAP)
    assert again == request
    assert json.dumps(contract.encode_execute_request(again)) == text


def test_minimal_request_round_trips() -> None:
    request = ExecuteRequest(
        context=RequestContext(tenant_id="t", extension_id="e", content_hash=HEX),
        http=HttpRequest(method="GET", path="/", query={}, headers={}, body=None),
        limits=Limits(),
        providers=frozenset(),
        secret_envelope=None,
        user=None,
    )
    encoded = contract.encode_execute_request(request)
    assert encoded == {
        "context": {"tenant_id": "t", "extension_id": "e", "content_hash": f"sha256:{HEX}", "config": {}},
        "http": {"method": "GET", "path": "/", "query": {}, "headers": {}, "body_b64": None},
        "limits": {},
        "providers": [],
        "secret_envelope": None,
        "user": None,
    }
    assert contract.decode_execute_request(encoded, max_body_bytes=CAP) == request


def runner_test_doc(**overrides: Any) -> dict[str, Any]:
    """The body ``tests/runner/http/conftest.py``'s ``RunnerHandle.execute`` posts."""
    doc: dict[str, Any] = {
        "context": {"tenant_id": "tenant-a", "extension_id": "ext-1", "content_hash": f"sha256:{HEX}",
                    "install_id": "inst-1", "config": {"mode": "test"}},
        "http": {"method": "POST", "path": "/items/7", "query": {"q": "a b"}, "headers": {"X-Custom": "yes"},
                 "body_b64": base64.b64encode(b"hello \x00\xff").decode()},
        "limits": {"timeout_ms": 200},
        "providers": ["cap:http.fetch"],
    }
    doc.update(overrides)
    return doc


def test_runner_test_documents_decode_and_re_encode() -> None:
    doc = runner_test_doc()
    request = contract.decode_execute_request(doc, max_body_bytes=CAP)
    assert request.context == RequestContext(tenant_id="tenant-a", extension_id="ext-1", content_hash=HEX,
                                             install_id="inst-1", config={"mode": "test"})
    assert request.http.headers == {"x-custom": "yes"}  # the runner has always lower-cased header names
    assert request.http.url == "/items/7?q=a+b"
    encoded = contract.encode_execute_request(request)
    # The same JSON value, plus the two keys the canonical form always writes; header names in normal form.
    doc["http"]["headers"] = {"x-custom": "yes"}
    assert encoded == {**doc, "secret_envelope": None, "user": None}
    assert contract.decode_execute_request(encoded, max_body_bytes=CAP) == request


def test_decoding_normalizes_as_the_runner_always_did() -> None:
    doc = runner_test_doc(providers=[" CAP:HTTP.FETCH ", "cap:http.fetch"])
    doc["context"]["content_hash"] = HEX.upper()
    doc["http"].update(method="get", path="items")
    doc["user"] = {"user_id": "u", "company_name": "Acme Ltd"}
    request = contract.decode_execute_request(doc, max_body_bytes=CAP)
    assert request.context.content_hash == HEX
    assert (request.http.method, request.http.path) == ("GET", "/items")
    assert request.providers == frozenset({"cap:http.fetch"})
    assert request.user == UserInfo(user_id="u", user_email="", user_name="", user_type="", client_name="Acme Ltd")


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda d: d.update(context=None), "context", "must be an object"),
        (lambda d: d["context"].pop("content_hash"), "context.content_hash", "is required"),
        (lambda d: d["context"].update(content_hash="nope"), "context.content_hash",
         "must be sha256:<64 hex> or 64 hex"),
        (lambda d: d["context"].update(tenant_id="a b"), "context.tenant_id",
         "must be 1-128 characters of [A-Za-z0-9._:@-]"),
        (lambda d: d["context"].update(install_id="inst-1\n"), "context.install_id",
         "must be 1-128 characters of [A-Za-z0-9._:@-]"),
        (lambda d: d["context"].update(config={"k": 1}), "context.config.k", "must be a string"),
        (lambda d: d["http"].update(method="G3T"), "http.method", "must be an HTTP method token"),
        (lambda d: d["http"].update(headers={"a": 1}), "http.headers.a", "must be a string"),
        (lambda d: d["http"].update(body_b64="***"), "http.body_b64", "must be base64"),
        (lambda d: d.update(limits={"timeout_ms": 0}), "limits.timeout_ms", "must be >= 1"),
        (lambda d: d.update(limits={"fuel": True}), "limits.fuel", "must be an integer"),
        (lambda d: d.update(providers="cap:http.fetch"), "providers", "must be a list of strings"),
        (lambda d: d.update(secret_envelope=[]), "secret_envelope", "must be an object"),
        (lambda d: d.update(user={"user_email": "x"}), "user.user_id", "is required"),
    ],
)
def test_request_errors_name_the_field(mutate: Any, field: str, message: str) -> None:
    doc = runner_test_doc()
    mutate(doc)
    with pytest.raises(contract.InvalidField) as caught:
        contract.decode_execute_request(doc, max_body_bytes=CAP)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_unknown_capabilities_and_body_cap() -> None:
    with pytest.raises(contract.UnknownCapabilities) as caught:
        contract.decode_execute_request(runner_test_doc(providers=["cap:http.fetch", "cap:teleport", "cap:mind.read"]),
                                        max_body_bytes=CAP)
    assert caught.value.names == ("cap:mind.read", "cap:teleport")
    assert str(caught.value) == "cap:mind.read, cap:teleport"
    with pytest.raises(contract.BodyTooLarge, match="request body exceeds 4 bytes"):
        contract.decode_execute_request(runner_test_doc(), max_body_bytes=4)


# Answers as the runner tests see them: JSON text as the runner writes it (json.dumps of the encoded result).
RESULTS = [
    '{"status": 200, "headers": {"x-method": "POST", "x-url": "/items/7?q=a+b"}, "body_b64": "aGVsbG8gAP8=", '
    '"error": null}',
    '{"status": 200, "headers": {}, "body_b64": "", "error": null}',
    '{"status": 400, "headers": {}, "body_b64": null, "error": "unknown_capabilities: cap:mind.read, cap:teleport"}',
    '{"status": 502, "headers": {}, "body_b64": null, "error": "bundle_fetch_failed: not_found"}',
    '{"status": 500, "headers": {}, "body_b64": null, "error": "execute_failed: trap"}',
    '{"status": 504, "headers": {}, "body_b64": null, "error": "execute_failed: timeout"}',
    '{"status": 400, "headers": {}, "body_b64": null, "error": "missing_routing_headers: x-alga-tenant, '
    'x-alga-extension"}',
]


@pytest.mark.parametrize("text", RESULTS)
def test_results_decode_and_re_encode_byte_identically(text: str) -> None:
    result = contract.decode_execute_result(json.loads(text))
    assert json.dumps(contract.encode_execute_result(result)) == text
    assert contract.decode_execute_result(contract.encode_execute_result(result)) == result


def test_result_fields() -> None:
    result = contract.decode_execute_result(json.loads(RESULTS[0]))
    assert result == ExecuteResult(200, {"x-method": "POST", "x-url": "/items/7?q=a+b"}, b"hello \x00\xff")
    assert contract.decode_execute_result({"status": 204, "headers": None}) == ExecuteResult(204, {}, None)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "$"),
        ({"status": "200"}, "status"),
        ({"status": True}, "status"),
        ({"status": 99}, "status"),
        ({"status": 200, "headers": {"a": 1}}, "headers"),
        ({"status": 200, "headers": ["a"]}, "headers"),
        ({"status": 200, "body_b64": 5}, "body_b64"),
        ({"status": 200, "error": 5}, "error"),
        # Every type is checked before the body is decoded: this is a bad answer, not only a bad body.
        ({"status": "x", "body_b64": "***"}, "status"),
    ],
)
def test_result_errors(doc: Any, field: str) -> None:
    with pytest.raises(contract.InvalidField) as caught:
        contract.decode_execute_result(doc)
    assert caught.value.field == field
    assert not isinstance(caught.value, contract.InvalidBase64)


def test_result_body_not_base64() -> None:
    with pytest.raises(contract.InvalidBase64) as caught:
        contract.decode_execute_result({"status": 200, "body_b64": "***"})
    assert caught.value.field == "body_b64"


# -- the extensions of the reference's body: journal policy, journal entry, usage ------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("off", "off"), ("errors", "errors"), ("ALL", "all"), (" sample:0.25 ", "sample:0.25"), ("sample:1", "sample:1")],
)
def test_journal_policies_parse_and_print(text: str, expected: str) -> None:
    assert str(contract.parse_journal_policy(text)) == expected


@pytest.mark.parametrize("text", ["", "some", "sample", "sample:", "sample:0", "sample:1.5", "sample:nan", "sample:x"])
def test_bad_journal_policies_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="journal policy"):
        contract.parse_journal_policy(text)


def test_journal_policy_travels_and_is_absent_by_default() -> None:
    doc = contract.encode_execute_request(
        contract.decode_execute_request({**_minimal(), "journal": "sample:0.5"}, max_body_bytes=CAP))
    assert doc["journal"] == "sample:0.5"
    assert "journal" not in contract.encode_execute_request(contract.decode_execute_request(_minimal(),
                                                                                           max_body_bytes=CAP))
    with pytest.raises(contract.InvalidField) as info:
        contract.decode_execute_request({**_minimal(), "journal": "everything"}, max_body_bytes=CAP)
    assert info.value.field == "journal"


def test_result_journal_entry_and_usage_round_trip() -> None:
    doc = {"status": 200, "headers": {}, "body_b64": None, "error": None, "journal_entry": "j0123abc",
           "usage": {"guest_cpu_ms": 1.5, "egress_requests": 2}}
    result = contract.decode_execute_result(doc)
    assert result.journal_entry == "j0123abc"
    assert result.usage == {"guest_cpu_ms": 1.5, "egress_requests": 2}
    assert contract.encode_execute_result(result) == doc
    plain = contract.encode_execute_result(ExecuteResult(200, {}, None))
    assert "journal_entry" not in plain
    assert "usage" not in plain


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"journal_entry": "../x"}, "journal_entry"), ({"usage": {"guest_cpu_ms": -1}}, "usage"),
     ({"usage": {"a": True}}, "usage"), ({"usage": [1]}, "usage")],
)
def test_result_extension_errors(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(contract.InvalidField) as info:
        contract.decode_execute_result({"status": 200, "headers": {}, "body_b64": None, "error": None, **extra})
    assert info.value.field == field


def _minimal() -> dict[str, Any]:
    return {"context": {"tenant_id": "t", "extension_id": "e", "content_hash": HEX}, "http": {"method": "GET"}}
