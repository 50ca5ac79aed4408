"""Manifests written for the reference runner: every key of its schema accepted, unknown keys warned, strict mode.

The manifests below are shaped like the reference repository's own samples and its manifest documentation
(the scheduler demo's ``schedulable`` endpoints, the reporting extension's ``entry`` and ``precompiled``, the
client-portal sample's two menus, the documented ``events`` and ``sbom``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bundles import EventSubscription, ManifestError, parse_manifest
from tests.bundles._bundle_helpers import manifest_dict

SCHEDULER_DEMO: dict[str, Any] = {
    "name": "com.alga.sample.scheduler-demo",
    "publisher": "Alga",
    "version": "0.1.0",
    "runtime": "wasm-js@1",
    "capabilities": ["cap:scheduler.manage", "cap:log.emit", "cap:context.read"],
    "ui": {"type": "iframe", "entry": "ui/index.html", "hooks": {"appMenu": {"label": "Scheduler Demo"}}},
    "api": {
        "endpoints": [
            {"method": "GET", "path": "/api/status", "handler": "dist/main", "schedulable": True},
            {"method": "POST", "path": "/api/setup", "handler": "dist/main"},
            {"method": "DELETE", "path": "/api/schedules/:id", "handler": "dist/main", "schedulable": False},
        ]
    },
    "assets": ["ui/**/*"],
}

REPORTING: dict[str, Any] = {
    "name": "com.alga.reporting",
    "publisher": "Example",
    "version": "0.1.0",
    "runtime": "wasm-js@1",
    "capabilities": ["cap:context.read", "cap:log.emit", "cap:ui.proxy"],
    "entry": "dist/main.wasm",
    "ui": {
        "type": "iframe",
        "entry": "ui/index.html",
        "hooks": {"appMenu": {"label": "Reporting"}, "clientPortalMenu": {"label": "Reports"}},
    },
    "precompiled": {
        "x86_64-linux-gnu": "precompiled/x86_64-linux-gnu.cwasm",
        "aarch64-linux-gnu": "precompiled/aarch64-linux-gnu.cwasm",
    },
    "assets": ["ui/**/*"],
}

DOCUMENTED: dict[str, Any] = {
    "name": "com.alga.softwareone",
    "publisher": "SoftwareOne",
    "version": "1.2.3",
    "runtime": "wasm-js@1",
    "capabilities": ["cap:http.fetch", "cap:storage.kv", "cap:secrets.get"],
    "ui": {
        "type": "iframe",
        "entry": "ui/index.html",
        # ui.hooks is free-form beyond the two menus; ui.routes is untyped in the reference.
        "hooks": {"appMenu": {"label": "Agreements"}, "ticketTab": {"label": "SWO", "order": 3, "flags": [True]}},
        "routes": [{"path": "/agreements", "label": "Agreements"}, {"path": "/agreements/:id"}],
    },
    "api": {
        "endpoints": [
            {"method": "GET", "path": "/agreements", "handler": "dist/handlers/http/list_agreements"},
            {"method": "POST", "path": "/agreements/sync", "handler": "dist/handlers/http/sync", "schedulable": True},
        ]
    },
    "events": [{"topic": "ticket.created", "handler": "dist/handlers/events/ticket_created"}],
    "precompiled": {"x86_64-linux-gnu": "artifacts/cwasm/x86_64-linux-gnu/main.cwasm"},
    "assets": ["ui/**/*"],
    "sbom": "sbom.spdx.json",
}


@pytest.mark.parametrize("raw", [SCHEDULER_DEMO, REPORTING, DOCUMENTED], ids=["scheduler", "reporting", "documented"])
def test_reference_manifests_parse_without_warnings_and_round_trip(raw: dict[str, Any]) -> None:
    manifest = parse_manifest(json.dumps(raw).encode(), strict=True)
    assert manifest.warnings == ()
    assert manifest.unknown_fields == ()
    # Nothing the reference knows is lost: the normalized JSON is the input, key for key.
    assert json.loads(manifest.to_json()) == _without_false_schedulable(raw)
    assert parse_manifest(manifest.to_json()) == manifest


def _without_false_schedulable(raw: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(raw))
    for endpoint in data.get("api", {}).get("endpoints", []):
        if endpoint.get("schedulable") is False:
            del endpoint["schedulable"]
    return data


def test_reference_keys_are_typed_values() -> None:
    manifest = parse_manifest(DOCUMENTED)
    assert manifest.sbom == "sbom.spdx.json"
    assert manifest.events == (EventSubscription("ticket.created", "dist/handlers/events/ticket_created"),)
    assert manifest.endpoints is not None
    assert [e.schedulable for e in manifest.endpoints] == [False, True]
    assert manifest.ui is not None
    assert manifest.ui.hooks is not None
    assert manifest.ui.hooks.app_menu_label == "Agreements"
    assert dict(manifest.ui.hooks.other) == {"ticketTab": {"label": "SWO", "order": 3, "flags": [True]}}
    assert manifest.ui.routes == [{"path": "/agreements", "label": "Agreements"}, {"path": "/agreements/:id"}]
    scheduler = parse_manifest(SCHEDULER_DEMO)
    assert scheduler.match_endpoint("GET", "/api/status") == scheduler.endpoints[0]  # type: ignore[index]
    assert scheduler.endpoints[0].schedulable  # type: ignore[index]


def _unknown_everywhere() -> dict[str, Any]:
    data = json.loads(json.dumps(DOCUMENTED))
    data["capabilites"] = ["cap:http.fetch"]  # the typo strict mode exists for
    data["ui"]["theme"] = "dark"
    data["ui"]["hooks"]["appMenu"]["icon"] = "chart"
    data["api"]["version"] = 2
    data["api"]["endpoints"][1]["auth"] = True
    data["events"][0]["retries"] = 3
    data["we ird\u0000"] = 1
    return data


UNKNOWN_PATHS = [
    "capabilites",
    '["we ird\\u0000"]',  # a key that is not plain is quoted and escaped
    "ui.theme",
    "ui.hooks.appMenu.icon",
    "api.version",
    "api.endpoints[1].auth",
    "events[0].retries",
]


def test_unknown_keys_are_accepted_and_named_in_warnings() -> None:
    manifest = parse_manifest(json.dumps(_unknown_everywhere()))
    assert sorted(manifest.unknown_fields) == sorted(UNKNOWN_PATHS)
    assert len(manifest.warnings) == len(UNKNOWN_PATHS)
    for path in UNKNOWN_PATHS:
        assert f"manifest {path}: unknown field, ignored" in manifest.warnings
    assert all(w.isprintable() for w in manifest.warnings)
    # Ignored means ignored: the manifest is the one without them, and they are not written back out.
    assert manifest == parse_manifest(DOCUMENTED)
    assert manifest.to_json() == parse_manifest(DOCUMENTED).to_json()


def test_strict_mode_refuses_unknown_keys_naming_each() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(json.dumps(_unknown_everywhere()), strict=True)
    assert info.value.path == "capabilites"
    assert "strict" in str(info.value)
    for path in UNKNOWN_PATHS:
        assert path in str(info.value)


@pytest.mark.parametrize(
    ("data", "unknown"),
    [
        (manifest_dict(api={"endpoints": [{"method": "GET", "path": "/x", "handler": "h", "auth": True}]}),
         "api.endpoints[0].auth"),
        (manifest_dict(ui={"type": "iframe", "entry": "i.html", "hooks": {"appMenu": {"label": "x", "icon": "y"}}}),
         "ui.hooks.appMenu.icon"),
        (manifest_dict(api={"routes": [], "endpoints": []}), "api.routes"),
    ],
)
def test_former_unknown_field_errors_are_warnings(data: dict[str, Any], unknown: str) -> None:
    assert parse_manifest(data).unknown_fields == (unknown,)
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, strict=True)
    assert info.value.path == unknown


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (manifest_dict(sbom=7), "sbom", "must be a string"),
        (manifest_dict(sbom=""), "sbom", "empty"),
        (manifest_dict(events="ticket.created"), "events", "must be an array"),
        (manifest_dict(events=[3]), "events[0]", "must be an object"),
        (manifest_dict(events=[{"topic": "t"}]), "events[0].handler", "required"),
        (manifest_dict(events=[{"topic": ["t"], "handler": "h"}]), "events[0].topic", "must be a string"),
        (manifest_dict(api={"endpoints": [{"method": "GET", "path": "/x", "handler": "h", "schedulable": "yes"}]}),
         "api.endpoints[0].schedulable", "must be a boolean"),
        (manifest_dict(api={"endpoints": [{"method": "GET", "path": "/x", "handler": "h", "schedulable": 1}]}),
         "api.endpoints[0].schedulable", "must be a boolean"),
        (manifest_dict(api={"routes": []}), "api.endpoints", "required"),
        (manifest_dict(ui={"type": "iframe", "entry": "ui/index.html", "hooks": []}), "ui.hooks", "must be an object"),
        (manifest_dict(ui={"type": "iframe", "entry": "i.html", "hooks": {"clientPortalMenu": {"label": 5}}}),
         "ui.hooks.clientPortalMenu.label", "must be a string"),
        (manifest_dict(ui={"type": "iframe", "entry": "i.html", "routes": _nested(34)}),
         "ui.routes" + "[0]" * 33, "nested more than 32"),
        (manifest_dict(ui={"type": "iframe", "entry": "i.html", "hooks": {"x": "\ud800"}}),
         "ui.hooks.x", "lone surrogate"),
        (manifest_dict(publisher="Ex\udc80ample"), "publisher", "lone surrogate"),
    ],
)
def test_wrong_types_of_reference_keys_name_the_field(data: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data)
    assert info.value.path == path
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"1" * 5000, "not valid JSON"),  # was a ValueError (int max str digits)
        (None, "must be an object, not null"),  # decoded data that is not an object: was a TypeError
        ([{"name": "x", "version": "1.0.0"}], "must be an object, not an array"),
    ],
)
def test_inputs_found_by_fuzzing_are_manifest_errors(raw: Any, fragment: str) -> None:
    with pytest.raises(ManifestError, match=fragment):
        parse_manifest(raw)
