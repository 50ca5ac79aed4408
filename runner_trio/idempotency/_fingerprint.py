"""What makes two keyed requests "the same request": the fingerprint stored with the key.

It covers what the guest is asked to do and for whom: the method, path, query and body of the guest request
and the user's id. It leaves out what legitimately changes between a request and its retry: the request id
(a client's retry through the gateway gets a new one), forwarded headers (tracing, dates), limits, the
install's config, version and sealed secrets. The same key with another fingerprint is ``KeyReused``.
"""

from __future__ import annotations

import base64
import hashlib
import json

from contract import ExecuteRequest

__all__ = ["request_fingerprint"]


def request_fingerprint(request: ExecuteRequest) -> str:
    """The hex sha256 of the request's identity (see the module docstring)."""
    http = request.http
    identity = {
        "method": http.method.upper(),
        "path": http.path,
        "query": sorted(http.query.items()),
        "body": None if http.body is None else base64.b64encode(http.body).decode(),
        "user": request.user.user_id if request.user is not None else None,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
