"""A real runner on a free port (the fixtures of ``tests/runner/http``) and the hostile components published
into its bundle store. Outcomes are read from the ``/v1/execute`` answer, as a caller (the gateway) sees them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import trio

from contract import ErrorCode, FailureKind, split_error
from tests._redis import redis_server
from tests.runner.http.conftest import RunnerHandle, bundle_dir, runner, runner_settings, shared, start_runner

from .wat import load_hostile

__all__ = ["Ran", "publish_hostile", "redis_server", "run", "runner", "runner_settings", "shared", "start_runner"]

STORAGE: list[str] = ["cap:storage.kv"]
HTTP: list[str] = ["cap:http.fetch"]


@dataclass(frozen=True)
class Ran:
    """One invocation as the caller saw it, and how long the caller waited."""

    result: dict[str, Any]
    seconds: float

    @property
    def status(self) -> int:
        status: int = self.result["status"]
        return status

    @property
    def answer(self) -> dict[str, Any]:
        """The result without ``usage`` (what the guest used: its own tests are tests/runner/http/test_usage.py)."""
        return {name: value for name, value in self.result.items() if name != "usage"}

    @property
    def body(self) -> bytes:
        encoded = self.result.get("body_b64")
        return base64.b64decode(encoded) if encoded is not None else b""

    @property
    def code(self) -> ErrorCode | None:
        error = self.result.get("error")
        return None if error is None else split_error(error)[0]

    @property
    def kind(self) -> FailureKind | None:
        error = self.result.get("error")
        if error is None:
            return None
        code, detail = split_error(error)
        if code is not ErrorCode.EXECUTE_FAILED or detail is None:
            return None
        return FailureKind(detail.partition(":")[0].strip())


async def publish_hostile(handle: RunnerHandle, name: str, capabilities: list[str] | None = None) -> str:
    """Publish ``<name>.wat`` (its manifest asking for ``capabilities``) once per runner; its content hash."""
    key = f"hostile:{name}"
    if key not in handle.published:
        src = bundle_dir(handle.shared.work, f"hostile-{name}", load_hostile(name), capabilities=capabilities)
        handle.published[key] = await handle.publish_dir(src)
    return handle.published[key]


async def run(handle: RunnerHandle, digest: str, *, body: bytes | None = None, timeout_ms: int = 5000,
              providers: list[str] | None = None, tenant: str = "tenant-hostile", extension: str = "ext-hostile",
              memory_mb: int | None = None) -> Ran:
    limits = {"timeout_ms": timeout_ms}
    if memory_mb is not None:
        limits["memory_mb"] = memory_mb
    started = trio.current_time()
    result = await handle.execute(digest, "/", method="POST" if body is not None else "GET", body=body,
                                  tenant=tenant, extension=extension, limits=limits, providers=providers)
    return Ran(result, trio.current_time() - started)
