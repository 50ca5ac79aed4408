"""The OpenAPI 3.1 description of the gateway's public and admin routes (served at ``/api/v1/openapi.json``).

Request bodies are not written here: each is the schema of its typed model in :mod:`._bodies` (the one the
handler validates with), listed under ``components.schemas`` by the model's name.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from contract import USAGE_FIELDS

from ._auth import ROLE_PERMISSIONS
from ._bodies import (
    BODIES,
    BudgetsReplace,
    CanaryCreate,
    CapabilitiesReplace,
    ConfigReplace,
    ConsentApprove,
    ExtensionRegister,
    InstallCanaryCreate,
    InstallCreate,
    InstallUpgrade,
    JournalPolicySet,
    ReplayRequest,
    RollbackRequest,
    SecretsReplace,
    SessionCreate,
    TenantCreate,
    TenantSettingsUpdate,
    TokenCreate,
    UpgradeCheckRequest,
    UserCreate,
)
from ._budgets import BUDGET_NAMES
from ._rules import body_schema
from .registry import HISTORY_ACTIONS

_STR: Final = {"type": "string"}
_NULLABLE_STR: Final = {"type": ["string", "null"]}
_STR_MAP: Final = {"type": "object", "additionalProperties": {"type": "string"}}
_STR_LIST: Final = {"type": "array", "items": {"type": "string"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], props: dict[str, Any], *, closed: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


def _op(summary: str, responses: dict[str, Any], *, body: type | None = None,
        security: str = "admin", params: list[dict[str, Any]] | None = None, tag: str = "admin") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body.__name__)}}}
    if security == "admin":
        op["security"] = [{"adminToken": []}, {"bearerToken": []}, {"session": []}]
    elif security == "user":
        op["security"] = [{"bearerToken": []}, {"session": []}]
    elif security == "service":
        op["security"] = [{"serviceToken": []}]
    elif security == "metrics":
        op["security"] = [{"metricsToken": []}]
    else:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _STR}


def _query_param(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_NUM: Final = {"type": "number", "minimum": 0}
_USAGE_SUMS: Final = _obj(["invocations", "errors"], {
    **{name: _NUM for name in ("invocations", "errors", *USAGE_FIELDS)},
    "calls": {"type": "object", "additionalProperties": _NUM},
}, closed=False)
_USAGE_SCHEMAS: Final[dict[str, Any]] = {
    "UsageReport": _obj(["tenant_id", "from", "to", "granularity", "totals", "series"], {
        "tenant_id": _STR, "extension_id": _NULLABLE_STR, "from": _STR, "to": _STR,
        "granularity": {"enum": ["minute", "hour", "day"]}, "counters": _STR_LIST, "totals": _USAGE_SUMS,
        "extensions": {"type": "object", "additionalProperties": _USAGE_SUMS},
        "series": {"type": "array", "items": _USAGE_SUMS},
    }),
    "Budgets": _obj(["tenant_id", "budgets"], {"tenant_id": _STR, "budgets": {
        "type": "array", "items": _obj(["name", "period", "limit"], {
            "name": {"enum": list(BUDGET_NAMES)}, "period": {"enum": ["minute", "hour", "day"]}, "limit": _NUM,
            "period_s": _NUM})}}),
}

_JOURNAL_SCHEMAS: Final[dict[str, Any]] = {
    "JournalEntry": _obj(["id", "tenant_id", "extension_id", "content_hash", "outcome", "recorded_at"], {
        "id": _STR, "tenant_id": _STR, "extension_id": _STR, "install_id": _NULLABLE_STR, "content_hash": _STR,
        "request_id": _NULLABLE_STR, "outcome": _STR, "status": {"type": ["integer", "null"]},
        "recorded_at": _STR, "expires_at": _STR,
    }),
    "ReplayReport": _obj(["verdict"], {
        "verdict": {"enum": ["identical", "response_differs", "calls_differ", "new_failure"]},
        "divergence": {"type": ["object", "null"]}, "response_diff": _STR_LIST,
        "calls_replayed": {"type": "integer"}, "entry_id": _STR, "content_hash": _STR,
    }, closed=False),
    "UpgradeCheck": _obj(["id", "from", "to", "passed", "summary", "entries"], {
        "id": _STR, "tenant_id": _STR, "extension_id": _STR, "from": _STR, "to": _STR, "passed": {"type": "boolean"},
        "summary": {"type": "object", "additionalProperties": {"type": "integer"}},
        "entries": {"type": "array", "items": {"type": "object"}}, "created_at": _STR,
    }),
    "TenantSettings": _obj(["require_upgrade_check"], {"require_upgrade_check": {"type": "boolean"}}, closed=False),
}

_SCHEMAS: Final[dict[str, Any]] = {
    "Error": _obj(["error"], {"error": _STR, "message": _STR, "requestId": _STR, "retryAfter": {"type": "integer"},
                              "fields": _STR_MAP, "permission": _STR, "limit": {"type": "integer"}}),
    "Tenant": _obj(["id", "name", "created_at"], {"id": _STR, "name": _STR, "created_at": _STR}),
    "User": _obj(["id", "tenant_id", "email", "roles"], {
        "id": _STR, "tenant_id": _STR, "email": _STR, "name": _STR, "user_type": _STR,
        "roles": {"type": "array", "items": {"enum": sorted(ROLE_PERMISSIONS)}},
        "client_name": _NULLABLE_STR, "client_id": _NULLABLE_STR, "created_at": _STR,
    }, closed=False),
    "Token": _obj(["id", "user_id"], {
        "id": _STR, "user_id": _STR, "tenant_id": _STR, "name": _STR, "created_at": _STR,
        "expires_at": _NULLABLE_STR, "revoked_at": _NULLABLE_STR,
        "token": {"type": "string", "description": "the agt_… token; present only when minted"},
    }),
    "Version": _obj(["id", "extension_id", "version", "content_hash", "signature_status"], {
        "id": _STR, "extension_id": _STR, "version": _STR, "content_hash": _STR,
        "signature_status": {"enum": ["unsigned", "signed_unverified", "signed_verified"]}, "capabilities": _STR_LIST,
        "endpoints": {"type": "array", "items": _obj(["method", "path"], {"method": _STR, "path": _STR})},
        "has_ui": {"type": "boolean"}, "created_at": _STR,
    }),
    "Extension": _obj(["id", "name"], {
        "id": _STR, "name": _STR, "publisher": _NULLABLE_STR, "created_at": _STR,
        "versions": {"type": "array", "items": _ref("Version")},
    }),
    "Install": _obj(["id", "tenant_id", "extension_id", "version_id", "enabled"], {
        "id": _STR, "tenant_id": _STR, "extension_id": _STR, "version_id": _STR, "version": _STR,
        "content_hash": _STR, "signature_status": _STR, "enabled": {"type": "boolean"},
        "requested_capabilities": _STR_LIST, "granted_capabilities": _STR_LIST, "config": _STR_MAP,
        "secrets": {"oneOf": [{"type": "null"}, _obj(["keys"], {"keys": _STR_LIST, "expires_at": _NULLABLE_STR})]},
        "created_at": _STR, "updated_at": _STR, "journal_policy": _STR,
        "pending": {"oneOf": [{"type": "null"}, _obj(["version_id", "version", "content_hash"], {
            "version_id": _STR, "version": _STR, "content_hash": _STR, "since": _NULLABLE_STR})]},
    }),
    "VersionRef": _obj(["version_id", "version", "content_hash"],
                       {"version_id": _STR, "version": _STR, "content_hash": _STR}),
    "CapabilityDiff": _obj(["requires_consent", "capabilities", "egress", "secrets"], {
        "requires_consent": {"type": "boolean"},
        **{part: _obj(["added", "removed"], {"added": _STR_LIST, "removed": _STR_LIST})
           for part in ("capabilities", "egress", "secrets")},
    }),
    "HistoryEntry": _obj(["id", "action", "to", "at"], {
        "id": {"type": "integer"},
        "action": {"enum": list(HISTORY_ACTIONS)},
        "from": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/VersionRef"}]},
        "to": {"$ref": "#/components/schemas/VersionRef"}, "actor": _NULLABLE_STR, "reason": _STR, "at": _STR,
    }),
    "CanaryArm": _obj(["requests", "errors", "timeouts"], {
        "requests": {"type": "integer"}, "errors": {"type": "integer"}, "timeouts": {"type": "integer"},
        "error_rate": {"type": "number"}, "timeout_rate": {"type": "number"}, "p99_ms": {"type": ["number", "null"]},
    }),
    "Canary": _obj(["id", "extension_id", "state", "percent", "window_s", "stats"], {
        "id": _STR, "extension_id": _STR, "tenant_id": _NULLABLE_STR,
        "tenants": {"type": ["array", "null"], "items": _STR},
        "from": _obj(["version_id"], {"version_id": _STR, "version": _STR, "content_hash": _STR}),
        "to": _obj(["version_id"], {"version_id": _STR, "version": _STR, "content_hash": _STR}),
        "percent": {"type": "number"},
        "budget": _obj([], {"max_error_rate": {"type": "number"}, "max_timeout_rate": {"type": "number"},
                            "max_p99_ms": {"type": ["number", "null"]}, "min_requests": {"type": "integer"}}),
        "window_s": {"type": "integer"},
        "state": {"enum": ["running", "promoted", "rolled_back", "cancelled"]},
        "reason": _NULLABLE_STR, "started_at": _STR, "ends_at": _STR, "decided_at": _NULLABLE_STR,
        "actor": _NULLABLE_STR,
        "stats": {"type": "object", "additionalProperties": _ref("CanaryArm"),
                  "description": "per arm (old, new): live while running, as decided after"},
    }),
    **_JOURNAL_SCHEMAS,
    **{model.__name__: body_schema(model) for model in BODIES},
    **_USAGE_SCHEMAS,
}

_ERROR_TEXT: Final = {
    400: "invalid request (fields names each problem)", 401: "no valid credential", 403: "not allowed",
    404: "not found", 409: "conflict", 413: "payload_too_large", 429: "rate limited (Retry-After)",
    502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout",
}
# 429 quota_exceeded (a tenant budget, _budgets.py) names the budget it hit.
_SCHEMAS["Error"]["properties"].update({"budget": _STR, "used": _NUM, "period": _STR,
                                        "retry_after_s": {"type": "integer"}})
_SCHEMAS["Error"]["properties"]["limit"] = {"type": "number"}


def _paths() -> dict[str, Any]:
    t, e, u = _path_param("tenant_id"), _path_param("extension_id"), _path_param("user_id")
    install = _json(_ref("Install"), "the install")
    canary, c = _json(_ref("Canary"), "the canary"), _path_param("canary_id")
    ext_proxy = _op(
        "Call an extension endpoint (any method); answered by the extension's handler", {
            "200": {"description": "the extension's response (status, filtered headers and body pass through)"},
            **_errors(400, 401, 403, 404, 413, 429, 502, 504)},
        security="user", tag="extensions",
        params=[_path_param("extension_id"), {"name": "path", "in": "path", "required": True, "schema": _STR}],
    )
    return {
        "/api/ext/{extension_id}/{path}": {m: copy.deepcopy(ext_proxy)
                                           for m in ("get", "head", "post", "put", "patch", "delete", "options")},
        # Where the reference host page sends the iframe's apiproxy calls: the same handler and checks.
        "/api/ext-proxy/{extension_id}/{path}": {m: copy.deepcopy(ext_proxy)
                                                 for m in ("get", "head", "post", "put", "patch", "delete",
                                                           "options")},
        "/ext-ui/{extension_id}/{content_hash}/{path}": {"get": _op(
            "Gate to the extension's UI on the runner", {"308": {"description": "redirect to the runner"},
                                                         **_errors(401, 404)},
            security="user", tag="extensions",
            params=[_path_param("extension_id"), _path_param("content_hash"), _path_param("path")])},
        "/api/session": {
            "post": _op("Exchange an API token for a session cookie", {
                "200": _json(_obj(["user_id", "tenant_id"], {"user_id": _STR, "tenant_id": _STR,
                                                              "expires_in_s": {"type": "integer"}}), "signed in"),
                **_errors(400, 401)}, body=SessionCreate, security="none", tag="session"),
            "delete": _op("End the session", {"204": {"description": "cookie cleared"}}, security="none",
                          tag="session"),
        },
        "/api/installs/validate": {"get": _op(
            "Runner strict mode: is (tenant, extension, hash) an active install? Without tenant: does any tenant "
            "have an active install of (extension, hash)? Without hash: the hash tenant's active install serves",
            {"200": _json(_obj(["valid"], {"valid": {"type": "boolean"},
                                           "content_hash": {"type": ["string", "null"]}}), "answer"),
             **_errors(400, 401, 503)},
            security="service", tag="runner",
            params=[_query_param("tenant", _STR), _query_param("extension", _STR, True),
                    _query_param("hash", _STR)])},
        "/api/ext-debug/stream": {"get": _op(
            "Tail an extension's debug events: WebSocket upgrade, or Server-Sent Events for a plain GET "
            "(replays the last N, then live; the tenant is the caller's own)",
            {"200": {"description": "text/event-stream, or a WebSocket of JSON events"},
             **_errors(400, 401, 403, 503)},
            security="user", tag="debug",
            params=[_query_param("extensionId", _STR, True), _query_param("requestId", _STR),
                    _query_param("installId", _STR), _query_param("level", _STR), _query_param("stream", _STR),
                    _query_param("tenantId", _STR), _query_param("last", {"type": "integer"})])},
        "/msp/extensions/{extension_id}": {"get": _op(
            "Host page embedding the installed extension's UI in a sandboxed iframe",
            {"200": {"description": "text/html"}, **_errors(401, 403, 404)},
            security="user", tag="pages", params=[_path_param("extension_id")])},
        "/msp/extensions/{extension_id}/debug": {"get": _op(
            "Debug console: the extension's live event tail", {"200": {"description": "text/html"}},
            security="none", tag="pages", params=[_path_param("extension_id")])},
        "/static/{name}": {"get": _op(
            "The iframe bridge (ext-bridge.js), the author helper (ext-iframe.js) and the host page assets",
            {"200": {"description": "file"}, **_errors(404)}, security="none", tag="pages",
            params=[_path_param("name")])},
        "/ext-debug/assets/{name}": {"get": _op(
            "Debug console assets", {"200": {"description": "file"}, **_errors(404)}, security="none",
            tag="pages", params=[_path_param("name")])},
        "/healthz": {"get": _op("Liveness", {"200": {"description": "alive"}}, security="none", tag="health")},
        "/readyz": {"get": _op("Readiness (registry reachable)", {
            "200": {"description": "ready"}, "503": {"description": "registry unavailable"}},
            security="none", tag="health")},
        "/metrics": {"get": _op(
            "Prometheus metrics of this gateway process (GATEWAY_METRICS_TOKEN; 403 metrics_disabled when unset)",
            {"200": {"description": "Prometheus text format"}, **_errors(401, 403)}, security="metrics",
            tag="health")},
        "/api/v1/openapi.json": {"get": _op("This document", {"200": {"description": "OpenAPI 3.1"}},
                                            security="none", tag="health")},
        "/api/v1/me": {"get": _op("The caller: user, tenant, permissions", {
            "200": _json(_ref("User"), "the caller"), **_errors(401)}, security="user", tag="session")},
        "/api/v1/tenants": {"post": _op("Create a tenant (admin token)", {
            "201": _json(_ref("Tenant"), "created"), **_errors(400, 401, 403, 409)},
            body=TenantCreate)},
        "/api/v1/tenants/{tenant_id}": {"get": _op("Read a tenant", {
            "200": _json(_ref("Tenant"), "the tenant"), **_errors(401, 403, 404)}, params=[t])},
        "/api/v1/tenants/{tenant_id}/users": {"post": _op("Create a user with roles", {
            "201": _json(_ref("User"), "created"), **_errors(400, 401, 403, 404, 409)}, params=[t],
            body=UserCreate)},
        "/api/v1/users/{user_id}": {"get": _op("Read a user", {
            "200": _json(_ref("User"), "the user"), **_errors(401, 403, 404)}, params=[u])},
        "/api/v1/users/{user_id}/tokens": {"post": _op("Mint an API token (shown once)", {
            "201": _json(_ref("Token"), "the token"), **_errors(400, 401, 403, 404)}, params=[u],
            body=TokenCreate)},
        "/api/v1/tokens/{token_id}": {"delete": _op("Revoke a token", {
            "200": _json(_ref("Token"), "revoked"), **_errors(401, 403, 404)}, params=[_path_param("token_id")])},
        "/api/v1/extensions": {"post": _op("Register a published bundle by content hash (admin token)", {
            "200": _json(_obj(["extension", "version"], {"extension": _ref("Extension"), "version": _ref("Version"),
                                                        "created": {"type": "boolean"}}), "already registered"),
            "201": {"description": "registered"}, **_errors(400, 401, 403, 404, 409, 503)},
            body=ExtensionRegister)},
        "/api/v1/extensions/{extension_id}": {"get": _op("Read an extension and its versions", {
            "200": _json(_ref("Extension"), "the extension"), **_errors(401, 403, 404)}, params=[e])},
        "/api/v1/tenants/{tenant_id}/audit": {"get": _op("Recent audit rows of the tenant", {
            "200": {"description": "entries, newest first"}, **_errors(400, 401, 403, 404)},
            params=[t, _query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000})])},
        "/api/v1/tenants/{tenant_id}/installs": {
            "get": _op("List the tenant's installs", {"200": {"description": "installs"}, **_errors(401, 403, 404)},
                       params=[t]),
            "post": _op("Install an extension (newest version unless one is named)", {
                "201": install, **_errors(400, 401, 403, 404, 409)}, params=[t],
                body=InstallCreate),
        },
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}": {
            "get": _op("Read an install", {"200": install, **_errors(401, 403, 404)}, params=[t, e]),
            "delete": _op("Uninstall", {"204": {"description": "removed"}, **_errors(401, 403, 404)}, params=[t, e]),
        },
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/upgrade": {"post": _op(
            "Move to another registered version; held for a tenant admin's consent when it asks for more "
            "capabilities, egress hosts or secrets", {
                "200": install,
                "202": _json(_obj(["status", "diff", "pending", "install"], {
                    "status": {"const": "pending_consent"}, "diff": _ref("CapabilityDiff"),
                    "pending": _ref("VersionRef"), "install": _ref("Install")}),
                    "held: the install still serves its version"),
                **_errors(400, 401, 403, 404, 409)}, params=[t, e], body=InstallUpgrade)},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/consent": {"post": _op(
            "Approve the upgrade waiting for consent (grants the capabilities it adds)", {
                "200": install,
                **_errors(400, 401, 403, 404, 409)}, params=[t, e], body=ConsentApprove)},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/rollback": {"post": _op(
            "Restore the version the install ran before (withdraws a pending upgrade)", {
                "200": install, **_errors(400, 401, 403, 404, 409)}, params=[t, e], body=RollbackRequest)},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/history": {"get": _op(
            "The install's version changes, newest first", {
                "200": _json(_obj(["entries"], {"entries": {"type": "array", "items": _ref("HistoryEntry")}}),
                             "history"), **_errors(400, 401, 403, 404)},
            params=[t, e, _query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000})])},
        "/api/v1/extensions/{extension_id}/diff": {"get": _op(
            "What version `to` asks for more or less than `from` (a version, sha256:<hex> or version id)", {
                "200": _json(_obj(["extension_id", "from", "to", "diff"], {
                    "extension_id": _STR, "from": _ref("VersionRef"), "to": _ref("VersionRef"),
                    "diff": _ref("CapabilityDiff")}), "the diff"),
                **_errors(400, 401, 403, 404)},
            params=[e, _query_param("from", _STR, True), _query_param("to", _STR, True)])},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/enable": {"post": _op(
            "Enable", {"200": install, **_errors(401, 403, 404)}, params=[t, e])},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/disable": {"post": _op(
            "Disable", {"200": install, **_errors(401, 403, 404)}, params=[t, e])},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/config": {"put": _op(
            "Replace the config map", {"200": install, **_errors(400, 401, 403, 404)}, params=[t, e],
            body=ConfigReplace)},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/capabilities": {"put": _op(
            "Replace the granted capabilities (only ones the manifest requests)",
            {"200": install, **_errors(400, 401, 403, 404)}, params=[t, e],
            body=CapabilitiesReplace)},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/secrets": {
            "put": _op("Replace the secrets (sealed at once; values are never returned)", {
                "200": _json(_obj(["keys"], {"keys": _STR_LIST, "expires_at": _NULLABLE_STR, "algorithm": _STR}),
                             "sealed"), **_errors(400, 401, 403, 404, 503)}, params=[t, e],
                body=SecretsReplace),
            "delete": _op("Remove the secrets", {"204": {"description": "removed"}, **_errors(401, 403, 404)},
                          params=[t, e]),
        },
        "/api/v1/extensions/{extension_id}/canaries": {"get": _op(
            "The extension's canaries, newest first (a tenant admin sees their tenant's)",
            {"200": _json(_obj(["canaries"], {"canaries": {"type": "array", "items": _ref("Canary")}}), "canaries"),
             **_errors(400, 401, 403)},
            params=[e, _query_param("state", {"enum": ["running", "promoted", "rolled_back", "cancelled"]}),
                    _query_param("limit", {"type": "integer", "minimum": 1, "maximum": 200})]), "post": _op(
            "Start a canary: a percentage of one tenant's requests, or every request of a list of tenants, on "
            "another version, promoted at the end of its window if the budget held, rolled back at once if not "
            "(admin token)", {"201": canary, **_errors(400, 401, 403, 404, 409, 503)}, params=[e],
            body=CanaryCreate)},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/canary": {"post": _op(
            "Start a canary of this install for a percentage of the tenant's requests",
            {"201": canary, **_errors(400, 401, 403, 404, 409, 503)}, params=[t, e], body=InstallCanaryCreate)},
        "/api/v1/extensions/{extension_id}/canaries/{canary_id}": {"get": _op(
            "A canary: state, reason, budget and per-arm counts", {"200": canary, **_errors(401, 403, 404)},
            params=[e, c])},
        "/api/v1/extensions/{extension_id}/canaries/{canary_id}/cancel": {"post": _op(
            "Cancel a running canary (the installs keep the version they run)",
            {"200": canary, **_errors(401, 403, 404, 409)}, params=[e, c])},
        "/api/v1/canaries/{canary_id}": {"get": _op(
            "A canary by id alone", {"200": canary, **_errors(401, 403, 404)}, params=[c])},
        "/api/v1/canaries/{canary_id}/cancel": {"post": _op(
            "Cancel a canary by id alone", {"200": canary, **_errors(401, 403, 404, 409)}, params=[c])},
        **_usage_paths(t, e),
    }


def _usage_paths(t: dict[str, Any], e: dict[str, Any]) -> dict[str, Any]:
    """Usage (billing), budgets and the least-privilege report (``_usage_api.py``)."""
    budgets = _json(_ref("Budgets"), "the tenant's budgets")
    return {
        "/api/v1/usage": {"get": _op(
            "A tenant's usage over [from, to) per bucket and extension, with totals (global admin: any tenant; "
            "tenant admin: their own)", {"200": _json(_ref("UsageReport"), "the report"),
                                         **_errors(400, 401, 403, 404, 503)},
            params=[_query_param("tenant", _STR), _query_param("from", _STR, True), _query_param("to", _STR),
                    _query_param("extension", _STR),
                    _query_param("granularity", {"type": "string", "enum": ["minute", "hour", "day"]})])},
        "/api/v1/usage/statistics": {"get": _op(
            "This gateway's accounting counters since start: answers recorded and dropped, rows written, failed "
            "writes; budget refusals (admin token)", {"200": {"description": "counters"}, **_errors(401, 403)})},
        "/api/v1/tenants/{tenant_id}/budgets": {
            "get": _op("The tenant's budgets", {"200": budgets, **_errors(401, 403, 404)}, params=[t]),
            "put": _op("Replace the tenant's budgets (admin token); enforced before each call (429 "
                       "quota_exceeded)", {"200": budgets, **_errors(400, 401, 403, 404)}, params=[t],
                       body=BudgetsReplace),
        },
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/privileges": {"get": _op(
            "Least privilege: per granted capability, the host calls made with it in the last N days; grants "
            "not used", {"200": {"description": "the report"}, **_errors(400, 401, 403, 404)},
            params=[t, e, _query_param("days", {"type": "integer", "minimum": 1, "maximum": 366})])},
    }


def _journal_paths() -> dict[str, Any]:
    """The invocation journal (``_journal_admin.py``)."""
    t, e, entry = _path_param("tenant_id"), _path_param("extension_id"), _path_param("entry_id")
    report = _json(_ref("ReplayReport"), "the replay report")
    settings = _json(_ref("TenantSettings"), "the tenant's settings")
    return {
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/journal": {"put": _op(
            "Set the install's journal policy (off, errors, all, sample:<rate>)",
            {"200": _json(_ref("Install"), "the install"), **_errors(400, 401, 403, 404)}, params=[t, e],
            body=JournalPolicySet)},
        "/api/v1/tenants/{tenant_id}/journal": {"get": _op(
            "The tenant's recorded invocations, newest first", {
                "200": _json(_obj(["entries"], {"entries": {"type": "array", "items": _ref("JournalEntry")}}),
                             "entries"), **_errors(400, 401, 403, 404)},
            params=[t, _query_param("extension", _STR), _query_param("outcome", _STR),
                    _query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000})])},
        "/api/v1/tenants/{tenant_id}/journal/{entry_id}": {"get": _op(
            "Download one recorded invocation (alga-journal/1; secret values are never in it)",
            {"200": _json({"type": "object"}, "the entry document"), **_errors(401, 403, 404, 503)},
            params=[t, entry])},
        "/api/v1/tenants/{tenant_id}/journal/{entry_id}/replay": {"post": _op(
            "Replay the entry on a runner (nothing real is touched), against its bundle or another version",
            {"200": report, **_errors(400, 401, 403, 404, 409, 502, 503, 504)}, params=[t, entry],
            body=ReplayRequest)},
        "/api/v1/tenants/{tenant_id}/installs/{extension_id}/upgrade-check": {"post": _op(
            "Replay the last recorded invocations of the installed version against another one",
            {"200": _json(_ref("UpgradeCheck"), "the table"), **_errors(400, 401, 403, 404)}, params=[t, e],
            body=UpgradeCheckRequest)},
        "/api/v1/tenants/{tenant_id}/settings": {
            "get": _op("The tenant's settings", {"200": settings, **_errors(401, 403, 404)}, params=[t]),
            "put": _op("Change tenant settings (require_upgrade_check: upgrades need a passing upgrade check)",
                       {"200": settings, **_errors(400, 401, 403, 404)}, params=[t], body=TenantSettingsUpdate),
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "ext-runtime gateway", "version": "1",
                 "description": "Extension calls, UI gate, sessions, and the registry/install admin API."},
        "paths": {**_paths(), **_journal_paths()},
        "components": {
            "schemas": copy.deepcopy(_SCHEMAS),
            "responses": {f"E{s}": _json(_ref("Error"), text) for s, text in _ERROR_TEXT.items()},
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "GATEWAY_ADMIN_TOKEN"},
                "bearerToken": {"type": "http", "scheme": "bearer", "description": "a user's agt_… API token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "alga_session"},
                "serviceToken": {"type": "http", "scheme": "bearer", "description": "RUNNER_SERVICE_TOKEN"},
                "metricsToken": {"type": "http", "scheme": "bearer", "description": "GATEWAY_METRICS_TOKEN"},
            },
        },
    }
