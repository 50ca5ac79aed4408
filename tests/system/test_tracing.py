"""One trace per request across gateway -> runner -> guest -> host calls (OpenTelemetry, W3C traceparent),
collected with the SDK's in-memory exporter from a real gateway in front of a real runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

import bundles
from gateway_quart import Settings as GatewaySettings
from gateway_quart import create_app
from runner_trio import Settings
from tests._tracing import by_name, collect_spans
from tests.gateway._helpers import start_server
from tests.guests.wat import load_wat
from tests.runner.http.conftest import TOKEN, Shared, start_runner

pytestmark = pytest.mark.timeout(300)

ADMIN = "admin-token-tracing-test-0123456789"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def _bundle(tmp: Path) -> bytes:
    src = tmp / "caps-src"
    (src / "dist").mkdir(parents=True)
    (src / "dist" / "main.wasm").write_bytes(load_wat("caps"))
    (src / "manifest.json").write_text(json.dumps({
        "name": "com.example.caps", "publisher": "tests", "version": "1.0.0", "runtime": "wasm-js@1",
        "capabilities": ["cap:storage.kv", "cap:secrets.get"],
        "api": {"endpoints": [{"method": "GET", "path": "/caps", "handler": "caps"}]},
    }))
    return bundles.pack_directory(src)


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_trace_from_the_client_through_gateway_runner_guest_and_host_calls(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path,
) -> None:
    runner = await start_runner(nursery, runner_settings(), shared)
    store = bundles.store.open_store(runner.settings.resolved_store_base)
    try:
        digest = await bundles.publish_bundle(store, await trio.to_thread.run_sync(_bundle, tmp_path))
    finally:
        await store.aclose()
    gateway = await start_server(nursery, create_app(GatewaySettings(
        runner_base_urls=(runner.url,), runner_service_token=TOKEN, registry_database=str(tmp_path / "reg.sqlite3"),
        bundle_store_base=runner.settings.resolved_store_base, admin_token=ADMIN, timeout_ms=60_000)))
    admin = {"authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=120) as client:
        async def post(path: str, body: object) -> dict[str, str]:
            response = await client.post(path, json=body, headers=admin)
            assert response.status_code in (200, 201), response.text
            return dict(response.json())

        await post("/api/v1/extensions", {"content_hash": digest, "extension_id": "caps"})
        await post("/api/v1/tenants", {"id": "acme", "name": "Acme"})
        user = await post("/api/v1/tenants/acme/users", {"email": "a@acme.test", "name": "A", "roles": ["member"]})
        token = (await post(f"/api/v1/users/{user['id']}/tokens", {"name": "t"}))["token"]
        await post("/api/v1/tenants/acme/installs",
                   {"extension_id": "caps", "granted_capabilities": ["cap:storage.kv"]})
        auth = {"authorization": f"Bearer {token}"}
        warm = await client.get("/api/ext/caps/caps", headers=auth)  # compile outside the collected trace
        assert warm.status_code == 200, warm.text

        with collect_spans() as exporter:
            response = await client.get("/api/ext/caps/caps", headers={
                **auth, "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
            assert response.status_code == 200, response.text
            spans = list(exporter.get_finished_spans())
    await runner.client.aclose()
    runner.shutdown.set()
    await gateway.close()

    assert {f"{span.context.trace_id:032x}" for span in spans} == {CLIENT_TRACE}, "one trace, the client's"
    (gateway_span,) = by_name(spans, "GET /api/ext/")
    (runner_span,) = by_name(spans, "POST /v1/execute")
    (guest_span,) = by_name(spans, "guest")
    host_spans = by_name(spans, "host ")
    assert gateway_span.kind == runner_span.kind == SpanKind.SERVER
    assert _parent(gateway_span) == int(CLIENT_SPAN, 16)
    assert _parent(runner_span) == gateway_span.context.span_id
    assert _parent(guest_span) == runner_span.context.span_id
    assert host_spans
    assert {_parent(span) for span in host_spans} == {guest_span.context.span_id}
    functions = " ".join(span.name for span in host_spans)
    for unit in ("Storage", "Secret", "Context"):
        assert unit.lower() in functions.lower(), functions
    for span in (gateway_span, runner_span):
        assert span.attributes is not None
        assert span.attributes["tenant.id"] == "acme"
        assert span.attributes["extension.id"] == "caps"
        assert span.attributes["extension.content_hash"] == digest
    assert runner_span.attributes is not None
    assert runner_span.attributes["runner.outcome"] == "ok"
    for phase in ("queue", "load", "guest"):
        assert float(runner_span.attributes[f"runner.{phase}_ms"]) >= 0  # type: ignore[arg-type]
