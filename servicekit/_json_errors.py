"""JSON for every error answer of a Quart app: no route of a service ever answers HTML.

Left alone, Quart answers an unknown route (404), a wrong method (405) and every other HTTP error with
werkzeug's HTML page, and an unexpected exception with an HTML 500 whose cause only the log knows.
:func:`json_errors` registers handlers that answer ``{"error": code, "message": text, "request_id": id}``
instead (the id also in ``x-request-id``):

- an ``HTTPException``: its status, ``error`` from its name (``not_found``, ``method_not_allowed``), its
  ``description`` as the message, its own headers kept (the ``Allow`` of a 405). An app that maps HTTP errors
  itself (the gateway, with its codes and shape) keeps its handler, registered before or after this one;
- any other exception, and an ``InternalServerError`` Quart makes of a failure outside the view (an
  after-request hook): HTTP 500 ``internal_error``, logged with its traceback and the same request id, so the
  caller's id finds the traceback.

The request id is the one the app put in ``g.request_id``, else the client's well-formed ``x-request-id``, else
a new one. Websocket errors are left to Quart as before (there is no HTTP answer to give).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Final

from quart import Quart, Response, g, has_request_context, request
from werkzeug.exceptions import HTTPException, InternalServerError

from ._ids import new_request_id

__all__ = ["json_errors", "unexpected_error"]

INTERNAL_ERROR: Final = "internal_error"
_INTERNAL_MESSAGE: Final = "unexpected error; the service log has it under this request id"
_REQUEST_ID_HEADER: Final = "x-request-id"
# The gateway's grammar for client request ids: safe to echo in a header and to write in a log line.
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NOT_WORD: Final = re.compile(r"[^a-z0-9]+")


def json_errors(app: Quart, logger: logging.Logger, *, id_field: str = "request_id") -> None:
    """Answer every HTTP error and unexpected exception of ``app`` with JSON (see the module docstring).

    Args:
        app: the Quart (or Quart-trio) app.
        logger: where unexpected exceptions are logged, with their traceback and request id.
        id_field: the body's name for the request id (the gateway's bodies say ``requestId``).
    """

    def answer(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        rid = _request_id()
        body = {"error": code, "message": message, id_field: rid}
        response = Response(json.dumps(body), status=status, content_type="application/json")
        for name, value in (headers or {}).items():
            response.headers[name] = value
        response.headers[_REQUEST_ID_HEADER] = rid
        return response

    async def http_error(exc: HTTPException) -> Response:
        if exc.response is not None:
            return exc.response  # type: ignore[return-value]  # an abort(Response): the app chose the answer
        status = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        code = _NOT_WORD.sub("_", exc.name.lower()).strip("_") or "http_error"
        return answer(status, code, exc.description or exc.name, headers)

    async def unexpected(exc: Exception) -> Response:
        if not has_request_context():
            raise exc  # a websocket: Quart's own handling, as without this handler
        if isinstance(exc, InternalServerError) and exc.original_exception is not None:
            cause: BaseException = exc.original_exception
        elif isinstance(exc, HTTPException):
            return await http_error(exc)
        else:
            cause = exc
        rid = _request_id()
        body = unexpected_error(logger, cause, method=request.method, path=request.path, request_id=rid,
                                id_field=id_field)
        response = Response(json.dumps(body), status=500, content_type="application/json")
        response.headers[_REQUEST_ID_HEADER] = rid
        return response

    if HTTPException not in app.error_handler_spec[None][None]:
        app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(InternalServerError, unexpected)
    app.register_error_handler(Exception, unexpected)


def unexpected_error(
    logger: logging.Logger, cause: BaseException, *, method: str, path: str, request_id: str,
    id_field: str = "request_id",
) -> dict[str, str]:
    """Log ``cause`` with its traceback and ``request_id``, and return the body of the HTTP 500 that answers it
    (``internal_error``): for a route served outside Quart's handlers (the gateway's proxy), answering as
    :func:`json_errors` does."""
    logger.error(
        "unexpected %s answering %s %s (request %s)", type(cause).__name__, method, path, request_id,
        exc_info=(type(cause), cause, cause.__traceback__),
    )
    return {"error": INTERNAL_ERROR, "message": _INTERNAL_MESSAGE, id_field: request_id}


def _request_id() -> str:
    known = g.get("request_id") if has_request_context() else None
    if isinstance(known, str) and known:
        return known
    given = request.headers.get(_REQUEST_ID_HEADER, "").strip() if has_request_context() else ""
    return given if _REQUEST_ID.fullmatch(given) else new_request_id().replace("-", "")
