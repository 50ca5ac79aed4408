"""Strict mode's question to the gateway: is this an active install, and (for an isolated origin) at which hash?"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final, final

import httpx
from cachetools import TTLCache

from cache import SingleFlight
from contract import ContentHashError, parse_prefixed_content_hash

__all__ = ["InstallValidator"]

log = logging.getLogger(__name__)

DEFAULT_VALIDATION_TIMEOUT_S: Final = 2.0
DEFAULT_VALIDATION_TTL_S: Final = 10.0
"""How long a gateway answer (yes or no) is reused: an uninstall stops serving within this delay."""
DEFAULT_VALIDATION_CACHE_ENTRIES: Final = 4096

_Key = tuple[str | None, str, str]
_NO_HASH: Final = ""
"""The hash slot of a key asking "which hash does this install serve" (an isolated origin's question)."""


@final
class InstallValidator:
    """Asks the gateway whether (tenant, extension, hash) is an active install, with a small TTL cache.

    ``GET {base_url}/api/installs/validate?tenant=&extension=&hash=sha256:<hex>`` with the runner's service
    token as bearer. A 200 ``{"valid": true|false}`` is cached for ``ttl_s`` (both answers, so a flood of
    requests for an unknown install costs one gateway call per TTL); anything else (timeout, refused
    connection, a non-200, a malformed body) is a "no" that is not cached, so the next request asks again.
    Concurrent questions for one key share one gateway call.

    The UI's own assets (scripts, styles) are requested without ``?tenant=``: for them the question is whether
    *any* tenant has an active install of (extension, hash) — the gateway answers that when ``tenant`` is left
    out, so any runner replica can serve them, not only the one that saw the page. A UI file is the same for
    every tenant, so this reveals nothing tenant-specific; it only keeps serving limited to bundles that are
    really installed somewhere. A confirmed tenant install also answers the tenant-less question for the TTL.

    An isolated origin (``EXT_UI_ORIGIN_TEMPLATE``) names (tenant, extension) but no hash: :meth:`active_hash`
    asks without ``hash`` and the gateway answers ``{"valid", "content_hash"}``, cached the same way.

    Args:
        base_url: the gateway (``REGISTRY_BASE_URL``); ``None`` refuses everything (strict mode fails closed).
        service_token: ``RUNNER_SERVICE_TOKEN``, sent as ``Authorization: Bearer``.
        timeout_s: bound on one gateway call (connect + read).
        ttl_s: how long an answer is reused.
        max_entries: answers kept (least recently used dropped first).
        transport: an httpx transport (tests, unix sockets).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        base_url: str | None,
        service_token: str | None,
        *,
        timeout_s: float = DEFAULT_VALIDATION_TIMEOUT_S,
        ttl_s: float = DEFAULT_VALIDATION_TTL_S,
        max_entries: int = DEFAULT_VALIDATION_CACHE_ENTRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None
        # A value is the answer: True/False for a hash question, the hex digest ("" = none) for a hash lookup.
        self._answers: TTLCache[_Key, bool | str] = TTLCache(maxsize=max_entries, ttl=ttl_s, timer=clock)
        self._flights: SingleFlight[_Key, bool | str | None] = SingleFlight()
        headers = {"authorization": f"Bearer {service_token}"} if service_token else {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), headers=headers, transport=transport, follow_redirects=False
        )
        self.calls = self.hits = self.failures = 0
        if self._base_url is None:
            log.warning("EXT_STATIC_STRICT_VALIDATION is on but REGISTRY_BASE_URL is unset: ext-ui serves nothing")
        elif not service_token:
            log.warning("REGISTRY_BASE_URL is set without RUNNER_SERVICE_TOKEN: the gateway will refuse to answer")

    async def is_active(self, tenant: str | None, extension: str, hex_digest: str) -> bool:
        """True only when the gateway confirms an active install of ``extension`` at that hash for ``tenant``.

        With ``tenant=None``: whether any tenant has an active install of ``extension`` at that hash.
        """
        answer = await self._answer((tenant, extension, hex_digest))
        return answer is True

    async def active_hash(self, tenant: str, extension: str) -> str | None:
        """The hex digest ``tenant``'s active install of ``extension`` serves, or None (none, or in doubt)."""
        answer = await self._answer((tenant, extension, _NO_HASH))
        return answer if isinstance(answer, str) and answer else None

    async def _answer(self, key: _Key) -> bool | str | None:
        if self._base_url is None:
            return None
        found = self._answers.get(key)  # None once expired; a hit makes it the most recently used
        if found is not None:
            self.hits += 1
            return found
        answer, _ = await self._flights.run(key, lambda: self._ask(key))
        return answer

    def _remember(self, key: _Key, answer: bool | str) -> None:
        with contextlib.suppress(ValueError):  # max_entries=0: every question goes to the gateway
            self._answers[key] = answer

    async def _ask(self, key: _Key) -> bool | str | None:
        tenant, extension, hex_digest = key
        self.calls += 1
        query = {"extension": extension}
        if hex_digest != _NO_HASH:
            query["hash"] = f"sha256:{hex_digest}"
        if tenant is not None:
            query["tenant"] = tenant
        try:
            response = await self._client.get(f"{self._base_url}/api/installs/validate", params=query)
            body = response.json() if response.status_code == 200 else {}
            valid = body.get("valid")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            self.failures += 1
            log.warning("install validation for %s/%s unavailable: %s", tenant, extension, exc)
            return None
        if not isinstance(valid, bool):
            self.failures += 1
            log.warning("install validation for %s/%s: gateway answered %d", tenant, extension, response.status_code)
            return None
        if hex_digest == _NO_HASH:
            return self._remember_lookup(key, valid, body.get("content_hash"))
        self._remember(key, valid)
        if valid and tenant is not None:
            self._remember((None, extension, hex_digest), True)
        return valid

    def _remember_lookup(self, key: _Key, valid: bool, content_hash: object) -> str | None:
        digest = ""
        if valid:
            try:
                digest = parse_prefixed_content_hash(content_hash) if isinstance(content_hash, str) else ""
            except ContentHashError:
                digest = ""
            if not digest:
                self.failures += 1
                log.warning("install lookup for %s/%s: the gateway named no content hash", key[0], key[1])
                return None
        self._remember(key, digest)
        if digest:
            self._remember((key[0], key[1], digest), True)  # the page's hash question, answered on the way
        return digest

    async def aclose(self) -> None:
        await self._client.aclose()
