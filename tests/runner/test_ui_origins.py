"""One origin per install (``EXT_UI_ORIGIN_TEMPLATE``): the template's grammar, host-based dispatch on a real
runner asking the real gateway which hash an install serves, and CORS on the shared origin.

httpx may not resolve ``*.localhost``: requests go to 127.0.0.1 with the isolated origin's ``Host`` header."""

# ruff: noqa: F811 - test parameters named after the imported fixtures they receive
from __future__ import annotations

from pathlib import Path
from typing import Final

import httpx
import pytest

from contract import UiUrlSigner, signed_ui_path
from gateway_quart import Settings as GatewaySettings
from gateway_quart import SettingsError
from gateway_quart._settings import UiOriginTemplate as GatewayTemplate
from runner_trio import ConfigError, Settings
from runner_trio._ui_paths import DEFAULT_CSP, UiOriginTemplate
from runner_trio._ui_route import InstallValidator
from tests.browser._servers import SERVICE_TOKEN, UI_KEY, UiRunner, start_gateway, write_tree

# The fixtures of test_ui_route (servers, make_runner, published), imported so that pytest finds them here.
from .test_ui_route import FILES, INDEX, RunnerFactory, Servers, get, make_runner, published, servers, ui  # noqa: F401

TEMPLATE: Final = "http://{extension}--{tenant}.ext-ui.localhost:8080"


# -- the template ---------------------------------------------------------------------------------------------------


def test_template_origins_and_matching() -> None:
    template = UiOriginTemplate.parse(TEMPLATE)
    assert template.origin_for("acme", "kitchen-sink") == "http://kitchen-sink--acme.ext-ui.localhost:8080"
    assert template.match("kitchen-sink--acme.ext-ui.localhost:8080") == ("acme", "kitchen-sink")
    assert template.match("KITCHEN-SINK--ACME.ext-ui.localhost") == ("acme", "kitchen-sink")  # any port, any case
    uuid_a, uuid_b = "0b6f6c1e-7a5d-4c1b-9a51-2f0b8a3c9d10", "9f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"
    dotted = UiOriginTemplate.parse("https://{tenant}.{extension}.apps.example")
    assert dotted.match(f"{uuid_a}.{uuid_b}.apps.example") == (uuid_a, uuid_b)
    for host in ("ext-ui.localhost", "a--b--c.ext-ui.localhost", "a---b.ext-ui.localhost", "-a--b.ext-ui.localhost",
                 "a--b.ext-ui.localhost.evil", "x.a--b.ext-ui.localhost", "127.0.0.1:8080", "[::1]:8080",
                 "a_b--c.ext-ui.localhost"):
        assert template.match(host) is None, host
    # Ids that are not host labels get no isolated origin (the gateway keeps them on the shared origin).
    for tenant, extension in (("Acme", "x"), ("acme", "com.example"), ("acme", "a_b"), ("acme", "a--b"),
                              ("acme", "x" * 60)):
        assert template.origin_for(tenant, extension) is None, (tenant, extension)


@pytest.mark.parametrize("value", [
    "ftp://{extension}--{tenant}.x", "http://{extension}.x", "http://{extension}-{tenant}.x",
    "http://{extension}--{tenant}.x/path", "http://{extension}--{tenant}.x?q", "http://{ext}--{tenant}.x",
    "http://{extension}--{tenant}.x:0", "http://{extension}--{tenant}--{tenant}.x", "http://u@{extension}.{tenant}",
    "http://x{extension}.{tenant}.y", "http://{extension}.{tenant}.Under_score",
])
def test_bad_templates_stop_start_up(value: str) -> None:
    with pytest.raises(ConfigError, match="EXT_UI_ORIGIN_TEMPLATE"):
        Settings.from_env({"EXT_UI_ORIGIN_TEMPLATE": value})
    with pytest.raises(SettingsError) as raised:
        GatewaySettings.from_env({"RUNNER_BASE_URL": "http://r.test", "EXT_UI_ORIGIN_TEMPLATE": value})
    assert raised.value.setting == "EXT_UI_ORIGIN_TEMPLATE"


def test_the_gateway_frames_the_origins_the_runner_serves() -> None:
    """Two readings of one variable: every origin the gateway builds is one the runner maps back."""
    for value in (TEMPLATE, "https://{tenant}.{extension}.apps.example", "http://ui--{tenant}--{extension}.test:1"):
        runner = Settings.from_env({"EXT_UI_ORIGIN_TEMPLATE": value}).ui_origin_template
        gateway = GatewaySettings.from_env({"RUNNER_BASE_URL": "http://r.test", "EXT_UI_ORIGIN_TEMPLATE": value})
        assert runner is not None
        assert gateway.ui_origin_template is not None
        for tenant, extension in (("acme", "kitchen-sink"), ("t-1", "e-2"), ("Acme", "x"), ("a", "b.c")):
            origin = gateway.ui_origin_template.origin_for(tenant, extension)
            assert origin == runner.origin_for(tenant, extension)
            if origin is not None:
                assert runner.match(origin.split("://", 1)[1]) == (tenant, extension)
    assert GatewayTemplate.parse(TEMPLATE).template == TEMPLATE


# -- host-based dispatch --------------------------------------------------------------------------------------------


async def _isolated_stack(
    make_runner: RunnerFactory, tmp_path: Path, servers: Servers, *, ttl: list[float]
) -> tuple[UiRunner, str, str]:
    store_dir = tmp_path / "shared-store"
    store_dir.mkdir()
    gateway = await start_gateway(servers.nursery, tmp_path / "gw", store_dir=store_dir,
                                  runner_url="http://127.0.0.1:9")
    servers.started.append(gateway.server)
    validator = InstallValidator(gateway.url, SERVICE_TOKEN, ttl_s=10, clock=lambda: ttl[0])
    runner = await make_runner(store_dir=store_dir, validator=validator, ui_strict_validation=True,
                               ui_origin_template=UiOriginTemplate.parse(TEMPLATE), ui_signing_key=UI_KEY)
    installed = await runner.publish(write_tree(tmp_path / "a", FILES))
    other = await runner.publish(write_tree(tmp_path / "b", {**FILES, "ui/app.js": "console.log(2);"}))
    await gateway.tenant_with_token("acme")
    await gateway.tenant_with_token("globex")
    await gateway.register_and_install(installed, "ui-ext", "acme")
    await gateway.client.aclose()
    return runner, installed, other


async def on_host(runner: UiRunner, host: str, target: str, *, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient(base_url=runner.url, timeout=10) as client:
        return await client.request(method, target, headers={"host": host})


async def test_an_install_origin_serves_that_install_at_every_path(
    make_runner: RunnerFactory, tmp_path: Path, servers: Servers
) -> None:
    now = [0.0]
    runner, installed, _ = await _isolated_stack(make_runner, tmp_path, servers, ttl=now)
    host = "ui-ext--acme.ext-ui.localhost:8080"
    resp = await on_host(runner, host, "/?parentOrigin=http%3A%2F%2Fgw.test&_h=sha256%3A00")
    assert (resp.status_code, resp.text) == (200, INDEX)
    assert resp.headers["content-security-policy"] == DEFAULT_CSP
    # The URL stays when the install moves to another version: revalidate (the ETag keeps that cheap).
    assert resp.headers["cache-control"] == "no-cache"
    assert "access-control-allow-origin" not in resp.headers  # its own origin: no CORS needed, none given
    again = await on_host(runner, host, "/")
    assert again.headers["etag"] == resp.headers["etag"]
    assert (await on_host(runner, host, "/app.js")).text == FILES["ui/app.js"]
    assert (await on_host(runner, host, "/assets/a.txt")).text == "plain"  # absolute /assets/ paths (Vite)
    assert (await on_host(runner, host, "/reports/7")).text == INDEX  # a client-side route
    assert (await on_host(runner, host, "/docs/")).text == "<!doctype html><title>docs</title>"
    assert (await on_host(runner, host, "/missing.js")).status_code == 404
    assert (await on_host(runner, host, "/app.js", method="HEAD")).content == b""

    # Nothing else the runner serves is reachable from an extension's origin.
    resp = await on_host(runner, host, "/v1/execute", method="POST")
    assert (resp.status_code, resp.json()) == (405, {"code": "method_not_allowed"})
    assert (await on_host(runner, host, "/metrics")).text == INDEX
    resp = await on_host(runner, host, "/%2e%2e/%2e%2e/etc/passwd")
    assert (resp.status_code, resp.json()["code"]) == (400, "invalid_path")

    # Other tenants, other extensions and hosts outside the template: not this install.
    for other in ("ui-ext--globex.ext-ui.localhost", "other-ext--acme.ext-ui.localhost",
                  "ui-ext--nobody.ext-ui.localhost"):
        resp = await on_host(runner, other, "/")
        assert (resp.status_code, resp.json()) == (404, {"code": "not_found"}), other
    # The runner's own origin keeps the (signed) path route (and 404s for "/").
    token = UiUrlSigner(UI_KEY).issue(tenant="acme", extension="ui-ext", hex_digest=installed, ttl_s=60)
    assert (await get(runner, signed_ui_path("ui-ext", installed, token))).text == INDEX
    assert (await on_host(runner, "127.0.0.1", "/")).status_code == 404

    # One gateway question per install and TTL, shared by the page and its assets.
    validator = runner.validator
    assert validator is not None
    calls = validator.calls
    for path in ("/", "/app.js", "/style.css"):
        assert (await on_host(runner, host, path)).status_code == 200
    assert validator.calls == calls


async def test_an_uninstalled_origin_stops_serving_after_the_ttl(
    make_runner: RunnerFactory, tmp_path: Path, servers: Servers
) -> None:
    now = [0.0]
    runner, _, _ = await _isolated_stack(make_runner, tmp_path, servers, ttl=now)
    host = "ui-ext--acme.ext-ui.localhost"
    assert (await on_host(runner, host, "/")).status_code == 200
    gateway_url = servers.started[-1].url
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as admin:
        resp = await admin.delete("/api/v1/tenants/acme/installs/ui-ext",
                                  headers={"authorization": "Bearer admin-token-0123456789abcdef"})
        assert resp.status_code == 204
    assert (await on_host(runner, host, "/")).status_code == 200  # the cached answer, for the TTL
    now[0] += 11
    assert (await on_host(runner, host, "/")).status_code == 404


async def test_without_a_validator_isolated_origins_serve_nothing(make_runner: RunnerFactory, tmp_path: Path) -> None:
    runner = await make_runner(ui_origin_template=UiOriginTemplate.parse(TEMPLATE))
    hex_digest = await runner.publish(write_tree(tmp_path / "t", FILES))
    assert (await on_host(runner, "ui-ext--acme.ext-ui.localhost", "/")).status_code == 404
    assert (await get(runner, ui(hex_digest, "index.html"))).status_code == 200  # strict mode off here


# -- the shared origin ----------------------------------------------------------------------------------------------


async def test_shared_origin_assets_allow_opaque_origin_module_scripts(published: tuple[UiRunner, str]) -> None:
    """A sandboxed frame without allow-same-origin loads module scripts in CORS mode with ``Origin: null``."""
    runner, hex_digest = published
    for name in ("index.html", "app.js", "style.css"):
        resp = await get(runner, ui(hex_digest, name), origin="null")
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in resp.headers
        again = await get(runner, ui(hex_digest, name), origin="null", **{"if-none-match": resp.headers["etag"]})
        assert (again.status_code, again.headers["access-control-allow-origin"]) == (304, "*")
