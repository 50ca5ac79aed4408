"""extctl against the real gateway app (Hypercorn on a free port, SQLite registry, file:// store, a stand-in runner).

The full operator flow runs the CLI as a subprocess (``python -m extctl`` via ``trio.run_process``, so the trio
loop keeps serving the gateway); refusals run ``extctl.main`` in a worker thread for speed.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import wasmtime

import bundles
import sealing
from extctl import main
from gateway_quart import Settings, create_app
from tests.gateway._helpers import FakeRunner, start_runner, start_server

ADMIN_TOKEN = "admin-token-extctl-0123456789"
PLAINTEXT = "pa55-WORD-never-stored-7c6b5a"

MANIFEST = {
    "name": "com.example.echo",
    "publisher": "Example",
    "version": "1.0.0",
    "runtime": "wasm-js@1",
    "capabilities": ["cap:http.fetch", "cap:secrets.get", "cap:storage.kv"],
    "api": {"endpoints": [
        {"method": "GET", "path": "/items", "handler": "list"},
        {"method": "POST", "path": "/items", "handler": "create"},
    ]},
}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Stack:
    url: str
    runner: FakeRunner
    store: Path
    database: Path
    private_key: str
    tmp: Path


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # Nothing from the developer's shell may steer the CLI: its own variables, stores, proxies.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EXTCTL_") and k not in ("BUNDLE_STORE_BASE", "SIGNING_TRUST_BUNDLE")
           and "proxy" not in k.lower()}
    return {**env, **(extra or {})}


async def extctl(cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> Result:
    with trio.fail_after(60):
        proc = await trio.run_process(
            [sys.executable, "-m", "extctl", *args], cwd=cwd, env=_env(env), stdin=stdin, capture_stdout=True,
            capture_stderr=True, check=False,
        )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def _output_on_a_terminal(args: list[str]) -> bytes:
    """What ``extctl ARGS`` writes to stdout when stdout is a terminal (a pseudo-terminal here)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "extctl", *args], stdout=slave, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=_env(), timeout=60, check=False)
        os.close(slave)
        slave = -1
        assert proc.returncode == 0, proc.stderr
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer is gone and everything was read
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)


def _error_line(stderr: str, code: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{code}: "), lines[0]
    return lines[0]


@pytest.fixture
async def stack(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Stack]:
    """A gateway whose runner key pair comes from ``extctl secrets-keygen``, in front of a recording runner."""
    keygen = await extctl(tmp_path, "secrets-keygen", "--out", "runner.key")
    assert keygen.returncode == 0, keygen.stderr
    store = tmp_path / "store"
    store.mkdir()
    runner = FakeRunner()
    runner_server = await start_runner(nursery, runner)
    settings = Settings(
        runner_base_urls=(runner_server.url,),
        registry_database=str(tmp_path / "registry.sqlite3"),
        bundle_store_base=f"file://{store}",
        admin_token=ADMIN_TOKEN,
        runner_secrets_public_key=keygen.stdout.strip(),
        timeout_ms=5000,
    )
    server = await start_server(nursery, create_app(settings))
    yield Stack(server.url, runner, store, Path(settings.registry_database),
                (tmp_path / "runner.key").read_text().strip(), tmp_path)
    with trio.fail_after(10):
        await server.close()
        await runner_server.close()


async def _published(stack: Stack) -> str:
    """``extctl pack`` + ``extctl publish`` of the echo bundle; returns its content hash."""
    src = stack.tmp / "src"
    (src / "dist").mkdir(parents=True)
    (src / "dist" / "main.wasm").write_bytes(wasmtime.wat2wasm("(component)"))
    (src / "manifest.json").write_text(json.dumps(MANIFEST))
    pack = await extctl(stack.tmp, "pack", "src", "--out", "bundle.tar.zst")
    assert pack.returncode == 0, pack.stderr
    publish = await extctl(stack.tmp, "publish", "bundle.tar.zst", "--store", f"file://{stack.store}")
    assert publish.returncode == 0, publish.stderr
    assert publish.stdout.strip() == pack.stdout.strip()
    return publish.stdout.strip()


async def test_publish_register_install_secrets_invoke_uninstall(stack: Stack) -> None:
    content_hash = await _published(stack)
    admin = ["--gateway", stack.url, "--admin-token", ADMIN_TOKEN]

    register = await extctl(stack.tmp, "register", *admin, content_hash, "--extension-id", "echo")
    assert register.returncode == 0, register.stderr
    registered = json.loads(register.stdout)
    assert registered["created"] is True
    assert registered["extension"]["id"] == "echo"
    assert registered["version"]["content_hash"] == content_hash

    # The gateway and the credential from the environment this time.
    env = {"EXTCTL_GATEWAY": stack.url, "EXTCTL_ADMIN_TOKEN": ADMIN_TOKEN}
    tenant = await extctl(stack.tmp, "create-tenant", "Acme", env=env)  # the slug of the name is the id
    assert tenant.returncode == 0, tenant.stderr
    assert (json.loads(tenant.stdout)["id"], json.loads(tenant.stdout)["name"]) == ("acme", "Acme")
    user = await extctl(stack.tmp, "create-user", "--tenant", "acme", "--role", "member", "ann@example.com", env=env)
    assert user.returncode == 0, user.stderr
    user_record = json.loads(user.stdout)
    assert (user_record["tenant_id"], user_record["roles"]) == ("acme", ["member"])
    minted = await extctl(stack.tmp, "create-token", user_record["id"], "--name", "cli", env=env)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert token.startswith("agt_")
    assert minted.stdout == token + "\n"

    install = await extctl(
        stack.tmp, "install", *admin, "--tenant", "acme", "echo", "--version", content_hash,
        "--grant", "cap:http.fetch", "--grant", "cap:secrets.get", "--config", "GREETING=hello",
        "--config", "QUERY=a=b",
    )
    assert install.returncode == 0, install.stderr
    installed = json.loads(install.stdout)
    assert installed["granted_capabilities"] == ["cap:http.fetch", "cap:secrets.get"]
    assert installed["config"] == {"GREETING": "hello", "QUERY": "a=b"}
    assert installed["content_hash"] == content_hash
    assert installed["enabled"] is True

    secrets = {"DB_PASSWORD": PLAINTEXT, "API_KEY": "key-abcdef123456"}
    set_secrets = await extctl(stack.tmp, "set-secrets", *admin, "--tenant", "acme", "echo", "--file", "-",
                               "--expires-at", "2099-01-01T00:00:00Z", stdin=json.dumps(secrets).encode())
    assert set_secrets.returncode == 0, set_secrets.stderr
    assert json.loads(set_secrets.stdout) == {"keys": ["API_KEY", "DB_PASSWORD"], "expires_at": "2099-01-01T00:00:00Z",
                                              "algorithm": sealing.ALGORITHM}
    assert PLAINTEXT not in set_secrets.stdout + set_secrets.stderr
    # The registry holds the sealed envelope only; the runner's key (from secrets-keygen) opens it.
    on_disk = b"".join(p.read_bytes() for p in stack.database.parent.glob("registry.sqlite3*"))
    assert PLAINTEXT.encode() not in on_disk
    assert b"key-abcdef123456" not in on_disk
    with sqlite3.connect(stack.database) as conn:
        (stored,) = conn.execute("SELECT secret_envelope_json FROM installs").fetchone()
    assert sealing.open_envelope(json.loads(stored), stack.private_key, tenant_id="acme",
                                 extension_id="echo") == secrets

    call = await extctl(stack.tmp, "invoke", "--gateway", stack.url, "--token", token, "echo", "/items?x=1",
                        "-H", "accept-language: fr", "-H", "x-request-id: req-extctl-1")
    assert call.returncode == 0, call.stderr
    assert call.stderr == ""  # like curl: the status only with -i
    assert json.loads(call.stdout) == {"method": "GET", "path": "/items", "query": {"x": "1"}}
    assert not call.stdout.endswith("\n")  # a pipe gets the body's bytes unchanged (the runner sent no newline)
    # On a terminal the body ends with a newline, so the shell prompt starts on its own line.
    on_tty = await trio.to_thread.run_sync(
        _output_on_a_terminal, ["invoke", "--gateway", stack.url, "--token", token, "echo", "/items?x=1"]
    )
    assert on_tty.endswith(b"}\r\n"), on_tty  # the terminal writes \n as \r\n
    assert json.loads(on_tty) == {"method": "GET", "path": "/items", "query": {"x": "1"}}
    assert len(stack.runner.calls) == 2  # the pipe and the terminal
    seen = stack.runner.calls[0]
    assert seen["body"]["context"]["tenant_id"] == "acme"
    assert seen["body"]["context"]["request_id"] == "req-extctl-1"
    assert seen["body"]["context"]["config"] == {"GREETING": "hello", "QUERY": "a=b"}
    assert seen["body"]["providers"] == ["cap:http.fetch", "cap:secrets.get"]
    assert seen["body"]["http"]["headers"]["accept-language"] == "fr"
    assert sealing.open_envelope(seen["body"]["secret_envelope"], stack.private_key, tenant_id="acme",
                                 extension_id="echo") == secrets

    # A body makes it a POST; JSON is labelled as such. The token from the environment, headers with -i.
    post = await extctl(stack.tmp, "invoke", "echo", "items", "-d", '{"name": "widget"}', "-i",
                        env={"EXTCTL_GATEWAY": stack.url, "EXTCTL_TOKEN": token})
    assert post.returncode == 0, post.stderr
    assert post.stderr.startswith("HTTP/1.1 200 OK\n")
    assert "x-guest: yes" in post.stderr.splitlines()
    assert json.loads(post.stdout)["method"] == "POST"
    http = stack.runner.calls[-1]["body"]["http"]
    assert base64.b64decode(http["body_b64"]) == b'{"name": "widget"}'
    assert http["headers"]["content-type"] == "application/json"

    # A refusal of the gateway: the CLI's refusal line on stderr, its JSON body on stdout, exit 1.
    missing = await extctl(stack.tmp, "invoke", "--gateway", stack.url, "--token", token, "echo", "/nope")
    assert missing.returncode == 1
    assert missing.stderr == "http_status: 404 Not Found\n"
    assert json.loads(missing.stdout)["error"] == "endpoint_not_found"
    assert len(stack.runner.calls) == 3

    uninstall = await extctl(stack.tmp, "uninstall", *admin, "--tenant", "acme", "echo")
    assert uninstall.returncode == 0, uninstall.stderr
    assert json.loads(uninstall.stdout) == {"tenant_id": "acme", "extension_id": "echo", "uninstalled": True}
    gone = await extctl(stack.tmp, "invoke", "--gateway", stack.url, "--token", token, "echo", "/items")
    assert gone.returncode == 1
    assert json.loads(gone.stdout)["error"] == "not_installed"
    again = await extctl(stack.tmp, "uninstall", *admin, "--tenant", "acme", "echo")
    assert again.returncode == 1
    _error_line(again.stderr, "not_installed")
    with sqlite3.connect(stack.database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM installs").fetchone() == (0,)


async def run_main(*argv: str) -> int:
    """``extctl.main`` in a worker thread: its blocking HTTP client must not stall the loop serving the gateway."""
    with trio.fail_after(30):
        code: int = await trio.to_thread.run_sync(main, list(argv))
    return code


async def test_gateway_refusals_exit_1_with_the_gateway_code(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("EXTCTL_GATEWAY", "EXTCTL_ADMIN_TOKEN", "EXTCTL_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    content_hash = await _published(stack)
    admin = ["--gateway", stack.url, "--admin-token", ADMIN_TOKEN]
    capsys.readouterr()

    # A wrong admin token: the gateway's 401 code (a wrong token is "invalid_token"; none at all is a usage error).
    assert await run_main("register", "--gateway", stack.url, "--admin-token", "not-the-admin-token",
                          content_hash) == 1
    line = _error_line(capsys.readouterr().err, "invalid_token")
    assert "HTTP 401" in line
    assert await run_main("create-tenant", "--gateway", stack.url, "Nobody") == 2
    assert "EXTCTL_ADMIN_TOKEN" in _error_line(capsys.readouterr().err, "usage")

    assert await run_main("register", *admin, "sha256:" + "0" * 64) == 1
    _error_line(capsys.readouterr().err, "bundle_not_found")
    assert await run_main("register", *admin, content_hash, "--extension-id", "echo") == 0
    assert await run_main("create-tenant", *admin, "Acme", "--id", "acme") == 0
    capsys.readouterr()

    assert await run_main("install", *admin, "--tenant", "acme", "no-such-extension") == 1
    _error_line(capsys.readouterr().err, "extension_not_found")
    assert await run_main("install", *admin, "--tenant", "acme", "echo", "--grant", "cap:ui.proxy",
                          "--grant", "cap:nope") == 1
    line = _error_line(capsys.readouterr().err, "capabilities_not_requested")
    assert "granted_capabilities[0]: cap:ui.proxy is not requested by the manifest" in line
    assert "cap:nope is not a known capability" in line
    assert await run_main("install", *admin, "--tenant", "acme", "echo", "--version", "sha256:" + "1" * 64) == 1
    _error_line(capsys.readouterr().err, "version_not_found")
    assert await run_main("set-secrets", *admin, "--tenant", "acme", "echo", "--json", '{"A": "b"}') == 1
    _error_line(capsys.readouterr().err, "not_installed")
    assert await run_main("create-user", *admin, "--tenant", "acme", "--role", "viewer", "not-an-email") == 1
    assert "email: must be an email address" in _error_line(capsys.readouterr().err, "invalid_request")
    assert await run_main("create-token", *admin, "no-such-user") == 1
    _error_line(capsys.readouterr().err, "user_not_found")

    # A user token is not the admin token.
    assert await run_main("create-user", *admin, "--tenant", "acme", "--role", "admin", "ann@example.com") == 0
    user_id = json.loads(capsys.readouterr().out)["id"]
    assert await run_main("create-token", *admin, user_id, "--json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["user_id"] == user_id
    assert record["token"].startswith("agt_")
    assert await run_main("create-tenant", "--gateway", stack.url, "--admin-token", record["token"], "Evil") == 1
    _error_line(capsys.readouterr().err, "admin_token_required")

    # The id is the slug of the name unless told otherwise; a name with nothing to slug asks for --id.
    assert await run_main("create-tenant", *admin, "Globex Corp.") == 0
    assert json.loads(capsys.readouterr().out)["id"] == "globex-corp"
    assert await run_main("create-tenant", *admin, "Initech", "--generated-id") == 0
    assert str(uuid.UUID(json.loads(capsys.readouterr().out)["id"])) != "initech"
    assert await run_main("create-tenant", *admin, "***") == 2
    assert "--id" in _error_line(capsys.readouterr().err, "usage")

    # Nobody listening: a transport failure, still one line and exit 1.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert await run_main("create-tenant", "--gateway", closed, "--admin-token", ADMIN_TOKEN, "X") == 1
    _error_line(capsys.readouterr().err, "connect_error")


async def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EXTCTL_GATEWAY", "EXTCTL_ADMIN_TOKEN", "EXTCTL_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    admin = ["--admin-token", ADMIN_TOKEN]
    # Refused before any request is made (no gateway is running at the default URL in this test).
    for argv in (
        ["install", *admin, "--tenant", "acme", "echo", "--config", "novalue"],
        ["install", "--gateway", "ftp://example.test", *admin, "--tenant", "acme", "echo"],
        ["install", "--timeout", "0", *admin, "--tenant", "acme", "echo"],
        ["set-secrets", *admin, "--tenant", "acme", "echo", "--json", "[]"],
        ["set-secrets", *admin, "--tenant", "acme", "echo", "--json", "{}", "--expires-at", "tomorrow"],
        ["invoke", "--token", "agt_x", "echo", "/items", "-H", "no-colon"],
        ["invoke", "--token", "agt_x", "echo", "/items", "-H", "Authorization: Bearer other"],
        ["invoke", "echo", "/items"],  # no token
        ["create-token", "user-1"],  # no admin token
    ):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.startswith("usage: "), argv
    for argv in (
        ["install", *admin, "echo"],  # --tenant is required
        ["create-user", *admin, "--tenant", "acme", "--role", "owner", "ann@example.com"],
        ["set-secrets", *admin, "--tenant", "acme", "echo"],  # neither --json nor --file
        ["invoke", "--token", "agt_x", "echo", "/items", "-X", "FETCH"],
        ["invoke", "--token", "agt_x", "echo", "/items", "-d", "x", "--data-file", "f"],
        ["register", *admin],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
        assert "usage:" in capsys.readouterr().err


async def test_a_bundle_signed_with_the_wrong_key_is_refused_at_register_and_fixed_by_re_signing(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """The trap of issue 17: signed with the author's own key, it used to register and install and fail only at
    invoke, and re-signing could not be published. Now register names the trusted keys, and re-sign + publish
    is the way out."""
    for name in ("runner", "author"):
        assert (await extctl(tmp_path, "keygen", "--out", f"{name}.key")).returncode == 0
    store = tmp_path / "store"
    store.mkdir()
    runner_server = await start_runner(nursery, FakeRunner())
    settings = Settings(runner_base_urls=(runner_server.url,), registry_database=str(tmp_path / "registry.sqlite3"),
                        bundle_store_base=f"file://{store}", admin_token=ADMIN_TOKEN,
                        trust_bundle=bundles.TrustBundle.from_file(tmp_path / "runner.key.pub"))
    server = await start_server(nursery, create_app(settings))
    (fingerprint,) = settings.trust_bundle.fingerprints if settings.trust_bundle else ()
    admin = {"EXTCTL_GATEWAY": server.url, "EXTCTL_ADMIN_TOKEN": ADMIN_TOKEN}
    try:
        src = tmp_path / "src"
        (src / "dist").mkdir(parents=True)
        (src / "dist" / "main.wasm").write_bytes(wasmtime.wat2wasm("(component)"))
        (src / "manifest.json").write_text(json.dumps(MANIFEST))
        digest = (await extctl(tmp_path, "pack", "src", "--out", "b.tar.zst")).stdout.strip()

        assert (await extctl(tmp_path, "sign", "b.tar.zst", "--key", "author.key")).returncode == 0
        publish = await extctl(tmp_path, "publish", "b.tar.zst", "--store", f"file://{store}")
        assert publish.returncode == 0, publish.stderr
        refused = await extctl(tmp_path, "register", digest, "--extension-id", "echo", env=admin)
        assert refused.returncode == 1
        line = _error_line(refused.stderr, "signature_invalid")
        assert f"trusted keys: {fingerprint}" in line
        assert "HTTP 422" in line

        assert (await extctl(tmp_path, "sign", "b.tar.zst", "--key", "runner.key")).returncode == 0
        republish = await extctl(tmp_path, "publish", "b.tar.zst", "--store", f"file://{store}")
        assert republish.returncode == 0, republish.stderr  # was object_exists
        registered = await extctl(tmp_path, "register", digest, "--extension-id", "echo", env=admin)
        assert registered.returncode == 0, registered.stderr
        assert json.loads(registered.stdout)["version"]["signature_status"] == "signed_verified"
    finally:
        with trio.fail_after(10):
            await server.close()
            await runner_server.close()
