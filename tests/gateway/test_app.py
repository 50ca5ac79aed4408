"""App-level behaviour: health, readiness, the OpenAPI document, JSON for unknown routes, exported names."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

import gateway_quart
from gateway_quart import create_app

from .conftest import Gateway


async def test_health_and_readiness(gateway: Gateway) -> None:
    resp = await gateway.client.get("/healthz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ok"})
    assert resp.headers["x-content-type-options"] == "nosniff"
    resp = await gateway.client.get("/readyz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ready"})


async def test_openapi_document_is_valid_and_complete(gateway: Gateway) -> None:
    resp = await gateway.client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    document = resp.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    # Every route the app serves is described (path converters written as OpenAPI templates).
    app = create_app(gateway.settings)
    documented = set(document["paths"])
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        template = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule).rstrip("/")
        template = template.replace("{ext_id}", "{extension_id}").replace("{rest}", "{path}")
        matches = [p for p in documented if p == template or p.startswith(template + "/{")]
        assert matches, f"{rule.rule} is not in the OpenAPI document"


async def test_unknown_routes_answer_json(gateway: Gateway) -> None:
    resp = await gateway.client.get("/nope")
    assert (resp.status_code, resp.json()) == (404, {"error": "not_found"})
    resp = await gateway.client.patch("/healthz")
    assert (resp.status_code, resp.json()["error"]) == (405, "method_not_allowed")


def test_exported_names() -> None:
    assert set(gateway_quart.__all__) == {
        "ENV_VARS", "FORWARDED_REQUEST_HEADERS", "PERMISSION_ADMIN", "PERMISSION_READ", "PERMISSION_WRITE",
        "RESPONSE_HEADERS", "ROLE_PERMISSIONS", "SECURITY_HEADERS", "SESSION_COOKIE", "TOKEN_PREFIX", "ApiError",
        "Conflict", "Forbidden", "GatewayError", "InvalidRequest", "NotFound", "PayloadTooLarge", "Principal",
        "QuotaExceeded", "RateLimited", "RecordConflict", "RecordNotFound", "RegistryError", "RunnerClient",
        "RunnerResult",
        "Settings", "SettingsError", "TokenBucketLimiter", "Unauthorized", "UpstreamError", "create_app",
        "generate_token", "hash_token", "load_settings", "openapi_document", "serve",
    }
    for name in gateway_quart.__all__:
        assert hasattr(gateway_quart, name)
