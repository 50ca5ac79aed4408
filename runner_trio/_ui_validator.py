"""An isolated UI origin's question to the gateway: which hash does (tenant, extension)'s active install serve?

The path route (``/ext-ui/{ext}/{hash}/~t/{token}/``) asks nothing: the gateway's signature on the URL says it.
"""

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

_Key = tuple[str, str]


@final
class InstallValidator:
    """Asks the gateway which hash (tenant, extension)'s active install serves, with a small TTL cache.

    ``GET {base_url}/api/installs/validate?tenant=&extension=`` with the runner's service token as bearer,
    answered ``{"valid", "content_hash"}``. A well-formed 200 is cached for ``ttl_s`` (a "none" too, so a flood
    of requests for an unknown install costs one gateway call per TTL); anything else (timeout, refused
    connection, a non-200, a malformed body) is a "none" that is not cached, so the next request asks again.
    Concurrent questions for one key share one gateway call.

    Args:
        base_url: the gateway (``REGISTRY_BASE_URL``); ``None`` answers "none" to everything (fails closed).
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
        # The answer is the hex digest the install serves, "" when it has none.
        self._answers: TTLCache[_Key, str] = TTLCache(maxsize=max_entries, ttl=ttl_s, timer=clock)
        self._flights: SingleFlight[_Key, str | None] = SingleFlight()
        headers = {"authorization": f"Bearer {service_token}"} if service_token else {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), headers=headers, transport=transport, follow_redirects=False
        )
        self.calls = self.hits = self.failures = 0
        if self._base_url is None:
            log.warning("EXT_UI_ORIGIN_TEMPLATE is set but REGISTRY_BASE_URL is unset: isolated origins serve nothing")
        elif not service_token:
            log.warning("REGISTRY_BASE_URL is set without RUNNER_SERVICE_TOKEN: the gateway will refuse to answer")

    async def active_hash(self, tenant: str, extension: str) -> str | None:
        """The hex digest ``tenant``'s active install of ``extension`` serves, or None (none, or in doubt)."""
        if self._base_url is None:
            return None
        key = (tenant, extension)
        found = self._answers.get(key)  # None once expired; a hit makes it the most recently used
        if found is not None:
            self.hits += 1
            return found or None
        answer, _ = await self._flights.run(key, lambda: self._ask(key))
        return answer or None

    async def _ask(self, key: _Key) -> str | None:
        tenant, extension = key
        self.calls += 1
        try:
            response = await self._client.get(f"{self._base_url}/api/installs/validate",
                                              params={"extension": extension, "tenant": tenant})
            body = response.json() if response.status_code == 200 else {}
            valid = body.get("valid")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            self.failures += 1
            log.warning("install lookup for %s/%s unavailable: %s", tenant, extension, exc)
            return None
        if not isinstance(valid, bool):
            self.failures += 1
            log.warning("install lookup for %s/%s: gateway answered %d", tenant, extension, response.status_code)
            return None
        digest = ""
        if valid:
            content_hash = body.get("content_hash")
            try:
                digest = parse_prefixed_content_hash(content_hash) if isinstance(content_hash, str) else ""
            except ContentHashError:
                digest = ""
            if not digest:
                self.failures += 1
                log.warning("install lookup for %s/%s: the gateway named no content hash", tenant, extension)
                return None
        with contextlib.suppress(ValueError):  # max_entries=0: every question goes to the gateway
            self._answers[key] = digest
        return digest

    async def aclose(self) -> None:
        await self._client.aclose()
