"""What a load run sends and what each answer must be: a deterministic plan of mixed calls through the gateway.

Every call carries its own id three ways: as ``x-request-id`` (the gateway echoes it on every answer and puts
it in every refusal's ``requestId``), in the query (``?id=``; the echo guest returns the URL it saw as
``x-url``) and, for a POST, inside the body (the echo guest returns the body). An answer counts as this
call's only when the ids agree, so an answer delivered to the wrong request, or a guest run for another one,
is caught, not just a missing answer.

The mix (fractions of ``total``; the seed fixes which call is which and which go over raw sockets):

* ``get`` / ``post`` on tenants ``ok-0`` .. ``ok-3``: 200 from the echo guest (POST bodies of 0-4 KiB);
* ``limited`` on tenant ``hot``: its bucket holds ``burst`` tokens and refills at 1e-6/s, so exactly
  ``burst`` of its calls run and the rest (5% of ``total``) get 429 ``rate_limited``, whichever arrive last;
* ``unauth``: a token the gateway never issued, 401 before anything else;
* ``missing``: an endpoint the manifest does not declare, 404 ``endpoint_not_found``.

The ``ok-*`` tenants get exactly ``burst`` calls each: their buckets run dry on the last call, never before.
"""

from __future__ import annotations

import enum
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

EXTENSION: Final = "echo"
OK_TENANTS: Final = ("ok-0", "ok-1", "ok-2", "ok-3")
HOT_TENANT: Final = "hot"
RATE_LIMIT_RPS: Final = "0.000001"
"""The gateway's bucket refill: nothing refills during a run, so who gets 429 is a count, not a race."""

LIMITED_SHARE: Final = 0.05
UNAUTH_SHARE: Final = 0.08
MISSING_SHARE: Final = 0.04
RAW_SHARE_EARLY: Final = 0.10
"""Share of 401/404/429-prone calls sent on raw sockets, where the early answers are exercised."""
RAW_SHARE_OTHER: Final = 0.03
MAX_POST_PAD: Final = 4096

ECHO_MANIFEST: Final[Mapping[str, object]] = {
    "name": "load.echo",
    "publisher": "tests",
    "version": "1.0.0",
    "runtime": "wasm-js@1",
    "entry": "entry.wasm",
    "capabilities": [],
    "api": {"endpoints": [{"method": "GET", "path": "/items", "handler": "list"},
                          {"method": "POST", "path": "/items", "handler": "create"}]},
}


class Kind(enum.Enum):
    GET = "get"
    POST = "post"
    LIMITED = "limited"
    UNAUTH = "unauth"
    MISSING = "missing"


@dataclass(frozen=True)
class Call:
    """One planned request. ``raw``: sent on a raw keep-alive socket instead of the httpx pool."""

    id: str
    kind: Kind
    tenant: str | None  # None: no valid credential
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    raw: bool

    @property
    def early(self) -> bool:
        """The gateway answers before reading the body (401, 404): a raw client sends the head alone first."""
        return self.body is not None and self.kind in (Kind.UNAUTH, Kind.MISSING)


@dataclass(frozen=True)
class Plan:
    calls: list[Call]
    burst: int  # GATEWAY_RATE_LIMIT_BURST for this plan
    expected_429: int

    def count(self, kind: Kind) -> int:
        return sum(call.kind is kind for call in self.calls)


def rate_limit_burst(total: int) -> int:
    """``GATEWAY_RATE_LIMIT_BURST`` for a plan of ``total`` calls (each ``ok-*`` tenant's share)."""
    return _sizes(total)[0]


def _sizes(total: int) -> tuple[int, int, int]:
    limited_429 = round(total * LIMITED_SHARE)
    unauth = round(total * UNAUTH_SHARE)
    missing = round(total * MISSING_SHARE)
    burst = (total - limited_429 - unauth - missing) // (len(OK_TENANTS) + 1)
    if burst < 1 or limited_429 < 1:
        raise ValueError(f"{total} calls are too few for the mix")
    return burst, limited_429, unauth


def build_plan(total: int, tokens: Mapping[str, str], *, keyed_posts: bool, seed: int = 13) -> Plan:
    """``total`` calls for the tenants of ``tokens`` (tenant -> API token: the ``ok-*`` ones and ``hot``).

    ``keyed_posts``: each POST carries an ``Idempotency-Key`` (its id), so the gateway may retry it on another
    runner when the runner hop fails, as it retries GETs.

    Raises:
        ValueError: ``total`` too small for the mix.
    """
    rng = random.Random(seed)
    burst, limited_429, unauth = _sizes(total)
    slots: list[tuple[Kind, str | None]] = []
    for tenant in OK_TENANTS:
        slots += [(Kind.GET if i % 2 else Kind.POST, tenant) for i in range(burst)]
    slots += [(Kind.LIMITED, HOT_TENANT)] * (burst + limited_429)
    slots += [(Kind.UNAUTH, None)] * unauth
    # `missing` takes what rounding left over (at least its share): it never takes a token from any bucket.
    slots += [(Kind.MISSING, OK_TENANTS[i % len(OK_TENANTS)]) for i in range(total - len(slots))]
    rng.shuffle(slots)
    calls = [_call(index, kind, tenant, tokens, rng, keyed_posts) for index, (kind, tenant) in enumerate(slots)]
    return Plan(calls, burst, limited_429)


def _call(index: int, kind: Kind, tenant: str | None, tokens: Mapping[str, str], rng: random.Random,
          keyed: bool) -> Call:
    call_id = f"{kind.value}-{index:05d}"
    post = kind is Kind.POST or (kind is not Kind.GET and rng.random() < 0.5)
    path = "/nope" if kind is Kind.MISSING else "/items"
    token = tokens[tenant] if tenant is not None else f"not-a-token-{index}"
    headers = [("x-request-id", call_id), ("authorization", f"Bearer {token}")]
    body = None
    if post:
        body = json.dumps({"id": call_id, "pad": "x" * rng.randrange(MAX_POST_PAD)}).encode()
        headers.append(("content-type", "application/json"))
        if keyed:
            headers.append(("idempotency-key", call_id))
    share = RAW_SHARE_EARLY if kind in (Kind.LIMITED, Kind.UNAUTH, Kind.MISSING) else RAW_SHARE_OTHER
    return Call(
        id=call_id,
        kind=kind,
        tenant=tenant,
        method="POST" if post else "GET",
        target=f"/api/ext/{EXTENSION}{path}?id={call_id}",
        headers=tuple(headers),
        body=body,
        raw=rng.random() < share,
    )


_REFUSALS: Final = {Kind.UNAUTH: (401, "invalid_token"), Kind.MISSING: (404, "endpoint_not_found")}


def verify(call: Call, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """None when the answer is this call's and what its kind allows; else what is wrong (one short line).

    ``headers`` have lower-case names.
    """
    if headers.get("x-request-id") != call.id:
        return f"mismatch: x-request-id {headers.get('x-request-id')!r}"
    if call.kind in _REFUSALS or (call.kind is Kind.LIMITED and status == 429):
        want_status, want_code = _REFUSALS.get(call.kind, (429, "rate_limited"))
        if status != want_status:
            return f"status {status}"
        try:
            doc = json.loads(body)
        except ValueError:
            return f"status {status}: not JSON"
        if doc.get("error") != want_code or doc.get("requestId") != call.id:
            return f"mismatch: refusal {doc.get('error')!r} for {doc.get('requestId')!r}"
        return None
    if status != 200:
        return f"status {status}"
    # The echo guest's own view of the request: the URL with this call's id, the method, the tenant, the body.
    if headers.get("x-url") != f"/items?id={call.id}":
        return f"mismatch: guest saw {headers.get('x-url')!r}"
    if headers.get("x-method") != call.method or headers.get("x-tenant") != call.tenant:
        return f"mismatch: guest saw {headers.get('x-method')} for tenant {headers.get('x-tenant')}"
    if body != (call.body or b""):
        return f"mismatch: body of {len(body)} bytes"
    return None


def head_bytes(call: Call) -> bytes:
    """The HTTP/1.1 request head of ``call`` (for a raw socket)."""
    lines = [f"{call.method} {call.target} HTTP/1.1", "Host: load"]
    lines += [f"{name}: {value}" for name, value in call.headers]
    if call.body is not None:
        lines.append(f"Content-Length: {len(call.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

