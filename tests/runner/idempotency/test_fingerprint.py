"""The fingerprint: the same request under another request id matches; another body, path or user does not."""

from __future__ import annotations

import dataclasses

from contract import ExecuteRequest, HttpRequest, Limits, RequestContext, UserInfo
from runner_trio.idempotency import request_fingerprint


def _request(**http: object) -> ExecuteRequest:
    fields: dict[str, object] = {"method": "POST", "path": "/orders", "query": {"a": "1"},
                                 "headers": {"x-request-id": "r1"}, "body": b"{}"}
    fields.update(http)
    return ExecuteRequest(
        context=RequestContext(tenant_id="t", extension_id="e", content_hash="ab" * 32, request_id="r1"),
        http=HttpRequest(**fields),  # type: ignore[arg-type]
        limits=Limits(timeout_ms=1000),
        providers=frozenset(),
        secret_envelope=None,
        user=UserInfo(user_id="u1", user_email="", user_name="", user_type="", client_name=""),
    )


def test_what_a_retry_changes_is_not_fingerprinted() -> None:
    first = _request()
    retry = dataclasses.replace(
        _request(headers={"x-request-id": "r2", "traceparent": "00-abc"}),
        context=RequestContext(tenant_id="t", extension_id="e", content_hash="cd" * 32, request_id="r2"),
        limits=Limits(timeout_ms=900),
    )
    assert request_fingerprint(retry) == request_fingerprint(first)


def test_what_the_guest_is_asked_is_fingerprinted() -> None:
    base = request_fingerprint(_request())
    others = [_request(body=b'{"n": 2}'), _request(body=None), _request(path="/refunds"), _request(method="PUT"),
              _request(query={"a": "2"})]
    assert all(request_fingerprint(other) != base for other in others)
    other_user = dataclasses.replace(_request(), user=UserInfo("u2", "", "", "", ""))
    assert request_fingerprint(other_user) != base
