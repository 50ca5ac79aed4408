"""schemathesis against the gateway's own OpenAPI document: no 5xx, no traceback, JSON errors only.

The document is built in-process (``gateway_quart.openapi_document`` is what ``/api/v1/openapi.json`` serves);
the requests go to a real gateway served by Hypercorn on a free port, in a thread of its own running trio,
in front of a fake runner (``tests/gateway/_helpers.FakeRunner``), with the admin token on every call so the
admin routes get past authentication and their bodies are exercised. Each operation gets a handful of
examples (:data:`EXAMPLES`): the whole run stays well under a minute.

Left out: ``/api/ext-debug/stream`` (a stream that stays open; without Redis it is a documented 503).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, settings

import sealing
from gateway_quart import Settings, create_app, openapi_document
from tests.gateway._helpers import FakeRunner, start_server

EXAMPLES: Final = 5
ADMIN_TOKEN: Final = "admin-token-for-schemathesis-0123456789"

schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/api/ext-debug/stream")


@dataclass
class Served:
    url: str
    stop: Any  # a callable that stops the services (from any thread)


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    store = root / "store"
    store.mkdir()
    started: list[Served] = []
    ready = threading.Event()

    async def main() -> None:
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            runner = await start_server(nursery, FakeRunner().app())
            _, public_key = sealing.generate_keypair()
            settings_ = Settings(
                runner_base_urls=(runner.url,),
                registry_database=str(root / "registry.sqlite3"),
                bundle_store_base=f"file://{store}",
                admin_token=ADMIN_TOKEN,
                runner_service_token="service-token-for-schemathesis-0123",
                runner_secrets_public_key=public_key,
                runner_public_base="https://runner.example.test",
                timeout_ms=5000,
            )
            gateway = await start_server(nursery, create_app(settings_))
            token = trio.lowlevel.current_trio_token()
            started.append(Served(gateway.url, lambda: trio.from_thread.run_sync(done.set, trio_token=token)))
            ready.set()
            await done.wait()
            for server in (gateway, runner):
                await server.close()
            nursery.cancel_scope.cancel()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(30), "the gateway did not start"
    try:
        yield started[0].url
    finally:
        started[0].stop()
        thread.join(30)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_no_traceback_json_errors_only(case: schemathesis.Case, gateway_url: str) -> None:
    response = case.call(base_url=gateway_url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    text = response.text
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {text[:300]}"
    assert "Traceback" not in text
    assert 'File "' not in text
    if response.status_code >= 400 and case.method != "HEAD":  # a HEAD answer has headers only
        content_type = response.headers.get("content-type") or [""]
        assert content_type[0].startswith("application/json"), text[:300]
        body = response.json()
        assert isinstance(body, dict)
        assert isinstance(body.get("error"), str)
