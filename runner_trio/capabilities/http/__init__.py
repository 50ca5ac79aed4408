"""The http capability: ``alga:extension/http``, outbound HTTP for guests behind ``cap:http.fetch``.

One folder holds the whole unit:

* ``_egress.py``: the egress policy (``EXT_EGRESS_ALLOWLIST``), a pure grammar and matcher, no I/O;
* ``_fetch.py``: :class:`GuestFetcher`, the network side: the policy before DNS, addresses vetted after DNS,
  the connection pinned to the vetted address, caps and timeouts;
* ``_capability.py``: the WIT glue (:class:`HttpCapability`) and the :class:`HttpBackend` protocol;
* ``_configure.py``: :func:`configure`, parsing the allowlist once at start.

Its errors are the capabilities' tree: :class:`HostCallError` (``invalid-url``, ``not-allowed``,
``transport``, ``internal``) and :class:`EgressEntryError` at start.
"""

from __future__ import annotations

from .._errors import EgressEntryError
from ._capability import HTTP_ERRORS, HttpBackend, HttpCapability, HttpResponseLike
from ._configure import HttpSettings, configure, defaults
from ._egress import DEFAULT_PORTS, Decision, EgressPolicy, EgressRule, IPAddress
from ._fetch import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ADDRESSES_TRIED,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_REQUEST_HEADER_BYTES,
    DEFAULT_MAX_REQUESTS_PER_INVOCATION,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_TOTAL_TIMEOUT,
    FetchResponse,
    FetchStatistics,
    GuestFetcher,
    Resolver,
    is_public_address,
    resolve_host,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ADDRESSES_TRIED",
    "DEFAULT_MAX_REQUESTS_PER_INVOCATION",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_REQUEST_HEADER_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_PORTS",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "HTTP_ERRORS",
    "Decision",
    "EgressEntryError",
    "EgressPolicy",
    "EgressRule",
    "FetchResponse",
    "FetchStatistics",
    "GuestFetcher",
    "HttpBackend",
    "HttpCapability",
    "HttpResponseLike",
    "HttpSettings",
    "IPAddress",
    "Resolver",
    "configure",
    "defaults",
    "is_public_address",
    "resolve_host",
]
