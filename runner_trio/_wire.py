"""The runner's side of the ``/v1/execute`` contract: ``contract``'s codec, with its errors in the runner's terms.

The typed values and the JSON codec live in :mod:`contract` (the gateway builds its requests with the same
ones); this module translates a refused document into the runner's errors, which carry the HTTP status and the
wire code the route answers with.
"""

from __future__ import annotations

from typing import Any

import contract
from contract import ExecuteRequest, ExecuteResult, HttpRequest, Limits, RequestContext, UserInfo

from ._errors import BodyTooLarge, RequestInvalid, UnknownCapabilities


def parse_execute_json(raw: bytes | str, *, max_body_bytes: int) -> ExecuteRequest:
    """Raw ``/v1/execute`` bytes to a typed request (orjson with size and depth limits, see
    :func:`contract.decode_execute_json`): every refusal is one of the errors below, never another exception.

    Raises:
        RequestInvalid: not JSON, nested deeper than ``contract.MAX_JSON_DEPTH``, or a field is missing or has
            the wrong type (``.field`` names it; ``$`` for the document).
        UnknownCapabilities: ``providers`` names capabilities that do not exist.
        BodyTooLarge: the document or the decoded request body is over its cap.
    """
    try:
        return contract.decode_execute_json(raw, max_body_bytes=max_body_bytes)
    except contract.InvalidField as exc:
        raise RequestInvalid(exc.field, exc.message) from None
    except contract.UnknownCapabilities as exc:
        raise UnknownCapabilities(", ".join(exc.names)) from None
    except contract.BodyTooLarge as exc:
        raise BodyTooLarge(exc.message) from None

__all__ = [
    "ExecuteRequest",
    "ExecuteResult",
    "HttpRequest",
    "Limits",
    "RequestContext",
    "UserInfo",
    "parse_execute_json",
    "parse_execute_request",
]


def parse_execute_request(doc: Any, *, max_body_bytes: int) -> ExecuteRequest:
    """Validate a decoded ``/v1/execute`` body (see :func:`contract.decode_execute_request`).

    Raises:
        RequestInvalid: a field is missing or has the wrong type (``.field`` names it).
        UnknownCapabilities: ``providers`` names capabilities that do not exist.
        BodyTooLarge: the decoded request body exceeds ``max_body_bytes``.
    """
    try:
        return contract.decode_execute_request(doc, max_body_bytes=max_body_bytes)
    except contract.InvalidField as exc:
        raise RequestInvalid(exc.field, exc.message) from None
    except contract.UnknownCapabilities as exc:
        raise UnknownCapabilities(", ".join(exc.names)) from None
    except contract.BodyTooLarge as exc:
        raise BodyTooLarge(exc.message) from None
