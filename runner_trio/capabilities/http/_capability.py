"""``alga:extension/http``: outbound HTTP for guests, behind ``cap:http.fetch``.

The network side is a :class:`HttpBackend` (the egress-checking fetcher); this module is the glue: it
converts the WIT records, runs the backend on the trio loop, and maps :class:`HostCallError` to ``http-error``.
Not granted, or no backend configured: ``not-allowed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, Protocol, final

from wasmtime.component import Record

from ...engine import (
    Err,
    HostScope,
    Invocation,
    LinkerInstanceBuilder,
    Ok,
    call_backend,
    host_function,
    wit_record,
)
from .._errors import HostCallError
from .._unit import CapabilityBase, aclose_backend, denied, guest_error, interface_name

__all__ = ["HTTP_ERRORS", "HttpBackend", "HttpCapability", "HttpResponseLike"]

HTTP_ERRORS: Final = frozenset({"invalid-url", "not-allowed", "transport", "internal"})


class HttpResponseLike(Protocol):
    """What a backend returns: ``http-response``."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Sequence[tuple[str, str]]: ...

    @property
    def body(self) -> bytes | None: ...


class HttpBackend(Protocol):
    """Performs one guest request; raises :class:`HostCallError` with an ``http-error`` case."""

    async def fetch(
        self,
        scope: HostScope,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
    ) -> HttpResponseLike: ...


@final
class HttpCapability(CapabilityBase):
    """``fetch(request: http-request) -> result<http-response, http-error>``.

    Args:
        backend: the fetcher; None answers every request ``not-allowed``.
    """

    name = "http"
    grant: str | None = "cap:http.fetch"

    def __init__(self, backend: HttpBackend | None = None) -> None:
        self.backend = backend

    async def aclose(self) -> None:
        await aclose_backend(self.backend)

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("fetch", host_function(self.fetch))

    def fetch(self, invocation: Invocation, request: Any) -> Ok | Err:
        backend = self.backend
        if backend is None or not invocation.allows(self.grant):
            return denied(invocation, Err("not-allowed"))
        headers = [(str(header.name), str(header.value)) for header in request.headers]
        body = None if request.body is None else bytes(request.body)
        try:
            response = call_backend(
                invocation,
                backend.fetch,
                invocation.host_scope,
                str(request.method),
                str(request.url),
                headers,
                body,
            )
        except HostCallError as exc:
            if exc.variant == "transport":  # it went out (or tried to): an egress request, its body sent
                invocation.counters.add_pair("egress_requests", 1, "egress_bytes", len(body or b""))
            return guest_error(invocation, exc, HTTP_ERRORS)
        received = response.body
        # Usage: request and response bodies (headers are not counted); a refused request is not egress.
        invocation.counters.add_pair("egress_requests", 1, "egress_bytes", len(body or b"") + len(received or b""))
        return Ok(_response_record(response))


def _response_record(response: HttpResponseLike) -> Record:
    return wit_record(
        status=int(response.status),
        headers=[wit_record(name=str(name), value=str(value)) for name, value in response.headers],
        body=None if response.body is None else bytes(response.body),
    )
