"""The author's path: ``extctl new`` scaffolds, ``extctl dev`` builds, installs and re-installs on every edit.

Against a real stack: ``python -m runner_trio`` (trusting the dev key) and ``python -m gateway_quart`` in child
processes on free ports (``tests/system/_procs.py``), a ``file://`` store. ``extctl dev`` runs as a subprocess,
as an author runs it; the test edits the handler and sees the new answer through the gateway's ``/api/ext/…``
while nothing is restarted. The toolchains are the real ones (componentize-py, componentize-js from npm),
their outputs cached by content under ``~/.cache/ext-runtime`` like the samples'.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import pytest
import trio

from tests.system._procs import Service, clean_env, gateway_env, runner_env, start_service

pytestmark = pytest.mark.slow

ADMIN_TOKEN: Final = "admin-token-dev-loop-0123456789"
SERVICE_TOKEN: Final = "service-token-dev-loop-0123456789"
TENANT: Final = "dev"
INSTALLED: Final = re.compile(r"==> installed (sha256:[0-9a-f]{64}) for tenant dev as (\S+)")
#: A cold componentize-py build on a loaded 2-core machine; cached runs take a second.
BUILD_TIMEOUT_S: Final = 400


@dataclass
class DevStack:
    runner: Service
    gateway: Service
    store_uri: str
    key: Path
    token: str
    tmp: Path


def _extctl(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "extctl", *args], capture_output=True, text=True, cwd=cwd,
                            check=False, env=clean_env({}))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
async def dev_stack(tmp_path: Path) -> AsyncIterator[DevStack]:
    key = tmp_path / "keys" / "signing.pem"
    key.parent.mkdir()
    await trio.to_thread.run_sync(_extctl, "keygen", "--out", str(key))
    store_uri = (tmp_path / "store").as_uri()
    (tmp_path / "store").mkdir()
    runner = await start_service("runner", "runner_trio", runner_env(
        var_dir=tmp_path / "runner", store_uri=store_uri, cache_root=tmp_path / "cache",
        service_token=SERVICE_TOKEN, SIGNING_TRUST_BUNDLE=str(key.with_name("signing.pem.pub")),
    ), tmp_path / "runner.log")
    try:
        gateway = await start_service("gateway", "gateway_quart", gateway_env(
            runner_urls=[runner.url], registry=tmp_path / "registry.sqlite3", store_uri=store_uri,
            service_token=SERVICE_TOKEN, admin_token=ADMIN_TOKEN, RUNNER_PUBLIC_BASE=runner.url,
        ), tmp_path / "gateway.log")
        try:
            admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
            async with httpx.AsyncClient(base_url=gateway.url, headers=admin, timeout=30) as client:
                (await client.post("/api/v1/tenants", json={"id": TENANT, "name": "Dev"})).raise_for_status()
                user = (await client.post(f"/api/v1/tenants/{TENANT}/users", json={
                    "email": "author@dev.test", "name": "Author", "roles": ["admin"]})).json()
                token = (await client.post(f"/api/v1/users/{user['id']}/tokens", json={"name": "dev"})).json()["token"]
            yield DevStack(runner, gateway, store_uri, key, token, tmp_path)
        finally:
            await gateway.stop()
    finally:
        await runner.stop()


@dataclass
class DevProcess:
    process: trio.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for_install(self, count: int) -> list[tuple[str, str]]:
        """The ``installed`` lines once there are ``count`` of them (fails with the log on exit or timeout)."""
        with trio.move_on_after(BUILD_TIMEOUT_S):
            while True:
                found = INSTALLED.findall(await trio.to_thread.run_sync(self.text))
                if len(found) >= count:
                    return found
                assert self.process.returncode is None, f"extctl dev exited:\n{self.text()[-4000:]}"
                await trio.sleep(0.2)
        raise AssertionError(f"no {count} installs within {BUILD_TIMEOUT_S} s:\n{self.text()[-4000:]}")


async def _start_dev(stack: DevStack, folder: Path) -> DevProcess:
    log = stack.tmp / "dev.log"
    with log.open("wb") as out:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "extctl", "dev", str(folder), "--gateway", stack.gateway.url,
             "--admin-token", ADMIN_TOKEN, "--token", stack.token, "--key", str(stack.key),
             "--store", stack.store_uri, "--runner", stack.runner.url, "--service-token", SERVICE_TOKEN],
            env=clean_env({"PYTHONUNBUFFERED": "1"}), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    return DevProcess(process, log)


async def _stop(dev: DevProcess) -> None:
    if dev.process.returncode is None:
        dev.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(20):
            await dev.process.wait()
        if dev.process.returncode is None:
            dev.process.kill()
            await dev.process.wait()


async def _get_json(stack: DevStack, path: str) -> tuple[int, object]:
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=120,
                                 headers={"authorization": f"Bearer {stack.token}"}) as client:
        response = await client.get(path)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


@pytest.mark.timeout(600)
async def test_new_then_dev_reinstalls_the_edited_handler_without_restarting_anything(dev_stack: DevStack) -> None:
    stack = dev_stack
    folder = stack.tmp / "hello-dev"
    written = await trio.to_thread.run_sync(_extctl, "new", "hello-dev", "--template", "py", "--dir", str(folder))
    for name in ("manifest.json", "app.py", "ui/index.html", "ui/app.js", "ui/ext-iframe.js",
                 "wit/alga-extension-runner.wit"):
        assert str(folder / name) in written
    assert json.loads((folder / "manifest.json").read_text())["name"] == "com.example.hello-dev"

    dev = await _start_dev(stack, folder)
    try:
        [(first_hash, ext_id)] = await dev.wait_for_install(1)
        assert ext_id == "hello-dev"
        text = dev.text()
        assert f"API  {stack.gateway.url}/api/ext/hello-dev/" in text
        assert f"UI   {stack.gateway.url}/msp/extensions/hello-dev" in text
        assert await _get_json(stack, "/api/ext/hello-dev/hello?name=author") == (
            200, {"message": "hello author", "tenant": TENANT})

        source = folder / "app.py"
        edited = source.read_text().replace('GREETING = "hello"', 'GREETING = "howdy"')
        assert "howdy" in edited
        source.write_text(edited)
        installs = await dev.wait_for_install(2)
        second_hash = installs[1][0]
        assert second_hash != first_hash
        assert await _get_json(stack, "/api/ext/hello-dev/hello?name=author") == (
            200, {"message": "howdy author", "tenant": TENANT})
        # Nothing was restarted: the same runner and gateway processes answered both versions.
        assert stack.runner.process.returncode is None
        assert stack.gateway.process.returncode is None
        assert dev.process.returncode is None
    finally:
        await _stop(dev)
    assert dev.process.returncode == 0, dev.text()[-2000:]  # SIGTERM ends the loop cleanly
    assert "==> SIGTERM: stopping" in dev.text()

    # Both versions are registered; the install serves the second.
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=30,
                                 headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        extension = (await client.get("/api/v1/extensions/hello-dev")).json()
        install = (await client.get(f"/api/v1/tenants/{TENANT}/installs/hello-dev")).json()
    hashes = {v["content_hash"].removeprefix("sha256:") for v in extension["versions"]}
    assert {first_hash.removeprefix("sha256:"), second_hash.removeprefix("sha256:")} <= hashes
    assert second_hash.removeprefix("sha256:") in json.dumps(install)


@pytest.mark.timeout(900)
async def test_js_template_builds_with_componentize_js(tmp_path: Path) -> None:
    folder = tmp_path / "hello-js-dev"
    await trio.to_thread.run_sync(_extctl, "new", "hello-js-dev", "--template", "js", "--dir", str(folder))
    assert json.loads((folder / "package.json").read_text())["scripts"]["build"].startswith("componentize-js ")
    out = await trio.to_thread.run_sync(_extctl, "build", str(folder))
    assert re.fullmatch(r"(built|cached) js \S+s \d+ bytes key [0-9a-f]{12} \S+/dist/main.wasm\n", out), out
    assert (folder / "dist" / "main.wasm").read_bytes()[:8] == b"\x00asm\x0d\x00\x01\x00"
