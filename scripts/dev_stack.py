"""Run the whole system on one machine with embedded defaults (used by ``scripts/run``).

Starts ``redis-server`` (when installed, on a free port: the debug events that ``extctl tail`` follows),
``python -m runner_trio`` and ``python -m gateway_quart`` as child processes, publishes the js-kitchen-sink
sample (signed with a dev key the runner and the gateway trust), registers and installs it for the dev tenant
through ``extctl`` against the gateway's admin API, prints what to try, and stops them all on Ctrl-C/SIGTERM.
Keys, tokens and the session secret are made once and kept in ``var/dev/dev.json`` (``EXT_DEV_DIR``), so URLs,
tokens and browser sessions stay the same across runs. Every printed command works when pasted into a shell
that ran the printed ``export`` lines (tests/system/test_dev_stack.py runs each one).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
DEV = Path(os.environ.get("EXT_DEV_DIR", ROOT / "var" / "dev")).resolve()
RUNNER_PORT = int(os.environ.get("RUNNER_PORT", "8080"))
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8000"))
SAMPLE = "js-kitchen-sink"
TENANT = "dev"
PY = sys.executable
BIN = Path(sys.prefix) / "bin"  # the virtualenv's: extctl is there


def extctl(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PY, "-m", "extctl", *args], capture_output=True, text=True, input=stdin,
        env={**os.environ, **(env or {})}, check=False,
    )
    if result.returncode != 0:
        sys.exit(f"extctl {args[0]} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def dev_state() -> dict[str, str]:
    DEV.mkdir(parents=True, exist_ok=True)
    path = DEV / "dev.json"
    if path.exists():
        state: dict[str, str] = json.loads(path.read_text())
    else:
        keys = DEV / "keys"
        keys.mkdir(exist_ok=True)
        extctl("keygen", "--out", str(keys / "signing.pem"), "--force")
        extctl("secrets-keygen", "--out", str(keys / "secrets.key"), "--force")
        state = {
            "service_token": secrets.token_urlsafe(24),
            "admin_token": secrets.token_urlsafe(24),
            "secrets_private": (keys / "secrets.key").read_text().strip(),
            "secrets_public": (keys / "secrets.key.pub").read_text().strip(),
        }
    changed = False
    if "session_secret" not in state:  # also added to a dev.json of an older scripts/run
        # Signs the gateway's session cookies: the same key after a restart keeps browsers logged in.
        state["session_secret"] = secrets.token_urlsafe(32)
        changed = True
    if "ui_signing_key" not in state:  # a dev.json written before signed /ext-ui URLs
        state["ui_signing_key"] = secrets.token_urlsafe(32)
        changed = True
    if "journal_keys" not in state:  # a dev.json written before the invocation journal
        # The runner seals journal entries with it, the gateway opens them for the admin API.
        state["journal_keys"] = extctl("journal", "keygen", "--id", "dev")
        changed = True
    if changed or not path.exists():
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)
    return state


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis() -> tuple[subprocess.Popen[bytes] | None, str | None]:
    """A throwaway ``redis-server`` for the debug events (none when it is not installed: no tail then)."""
    server = shutil.which("redis-server")
    if server is None:
        return None, None
    port = int(os.environ.get("DEV_REDIS_PORT") or free_port())
    data = DEV / "redis"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(data), "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + 15
    try:
        while True:
            if proc.poll() is not None:
                sys.exit(f"redis-server exited with status {proc.returncode} (port {port} taken? set DEV_REDIS_PORT)")
            try:
                client.ping()
                return proc, url
            except redis.RedisError:
                if time.monotonic() > deadline:
                    proc.kill()
                    sys.exit(f"redis-server did not answer on port {port}")
                time.sleep(0.1)
    finally:
        client.close()


def stage_sample() -> Path:
    src = ROOT / "samples" / SAMPLE
    dest = DEV / "stage" / SAMPLE
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "dist").mkdir(parents=True)
    shutil.copy(src / "manifest.json", dest)
    shutil.copy(src / "dist" / "main.wasm", dest / "dist")
    shutil.copytree(src / "ui", dest / "ui")
    return dest


def wait_healthy(url: str, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with status {proc.returncode} (see its log above)")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"{name} did not become healthy at {url}")


def main() -> None:
    state = dev_state()
    runner_url = f"http://127.0.0.1:{RUNNER_PORT}"
    gateway_url = f"http://127.0.0.1:{GATEWAY_PORT}"
    store = (DEV / "bundles").as_uri()
    keys = DEV / "keys"
    redis_proc, redis_url = start_redis()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "GATEWAY_", "EXT_", "STORAGE_"))}
    debug = {"RUNNER_DEBUG_REDIS_URL": redis_url} if redis_url else {}
    runner_env = {
        **base,
        **debug,
        "RUNNER_BIND": f"127.0.0.1:{RUNNER_PORT}",
        "RUNNER_WORKERS": "2",  # two worker processes on the one port even on a one-core laptop
        "RUNNER_VAR_DIR": str(DEV / "runner"),
        "BUNDLE_STORE_BASE": store,
        "SIGNING_TRUST_BUNDLE": str(keys / "signing.pem.pub"),
        "RUNNER_SERVICE_TOKEN": state["service_token"],
        "RUNNER_PUBLIC_BASE": runner_url,
        "RUNNER_SECRETS_PRIVATE_KEY": state["secrets_private"],
        "REGISTRY_BASE_URL": gateway_url,
        "EXT_UI_FRAME_ANCESTORS": gateway_url,
        "EXT_UI_SIGNING_KEY": state["ui_signing_key"],  # the gateway's: it signs the /ext-ui URLs this verifies
        "EXT_EGRESS_ALLOWLIST": "httpbin.org",
        "RUNNER_JOURNAL_KEYS": state["journal_keys"],
    }
    gateway_env = {
        **base,
        "GATEWAY_BIND": f"127.0.0.1:{GATEWAY_PORT}",
        "RUNNER_BASE_URL": runner_url,
        "RUNNER_PUBLIC_BASE": runner_url,
        "RUNNER_SERVICE_TOKEN": state["service_token"],
        "RUNNER_SECRETS_PUBLIC_KEY": state["secrets_public"],
        "REGISTRY_DATABASE": str(DEV / "registry.sqlite3"),
        "BUNDLE_STORE_BASE": store,
        # The runners' trust bundle: a bundle they would refuse is refused at register/install already.
        "SIGNING_TRUST_BUNDLE": str(keys / "signing.pem.pub"),
        "GATEWAY_ADMIN_TOKEN": state["admin_token"],
        "GATEWAY_SESSION_SECRET": state["session_secret"],
        "DEV_TENANT_ID": TENANT,
        "EXT_UI_SIGNING_KEY": state["ui_signing_key"],
        "GATEWAY_JOURNAL_KEYS": state["journal_keys"],
    }
    if redis_url:
        gateway_env["DEBUG_STREAM_REDIS_URL"] = redis_url
    procs = [
        subprocess.Popen([PY, "-m", "runner_trio"], env=runner_env),
        subprocess.Popen([PY, "-m", "gateway_quart"], env=gateway_env),
    ]
    services = procs + ([redis_proc] if redis_proc is not None else [])  # redis stops last

    def stop(*_: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in services:
            if proc is redis_proc and proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=35)
            except subprocess.TimeoutExpired:
                proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        wait_healthy(runner_url, procs[0], "runner")
        wait_healthy(gateway_url, procs[1], "gateway")
        admin = {"EXTCTL_GATEWAY": gateway_url, "EXTCTL_ADMIN_TOKEN": state["admin_token"]}
        bundle = DEV / f"{SAMPLE}.tar.zst"
        digest = extctl("pack", str(stage_sample()), "--out", str(bundle))
        extctl("sign", str(bundle), "--key", str(keys / "signing.pem"))
        extctl("publish", str(bundle), "--store", store, "--sig", f"{bundle}.sig")
        # Compile now (seconds for a JS component) so the first request is fast; later runs load the
        # precompiled artifact from the runner's cache in milliseconds.
        httpx.post(f"{runner_url}/v1/warmup", json={"content_hash": digest}, timeout=120,
                   headers={"authorization": f"Bearer {state['service_token']}"}).raise_for_status()
        registered = json.loads(extctl("register", digest, "--extension-id", "kitchen-sink", env=admin))
        ext_id = registered.get("extension_id") or registered.get("id") or "kitchen-sink"
        manifest = json.loads((ROOT / "samples" / SAMPLE / "manifest.json").read_text())
        grants = [arg for cap in manifest.get("capabilities", []) for arg in ("--grant", cap)]
        if not _installed(gateway_url, state, ext_id):
            extctl("install", "--tenant", TENANT, ext_id, "--version", digest, *grants,
                   "--config", "greeting=hello", env=admin)
        else:  # a rebuilt sample is a new version: move the install to it
            upgraded = httpx.post(
                f"{gateway_url}/api/v1/tenants/{TENANT}/installs/{ext_id}/upgrade",
                json={"content_hash": digest},
                headers={"authorization": f"Bearer {state['admin_token']}"},
                timeout=10,
            )
            upgraded.raise_for_status()
            if upgraded.status_code == 202:  # it asks for more than the last build: the dev tenant consents
                httpx.post(
                    f"{gateway_url}/api/v1/tenants/{TENANT}/installs/{ext_id}/consent",
                    json={"content_hash": digest},
                    headers={"authorization": f"Bearer {state['admin_token']}"},
                    timeout=10,
                ).raise_for_status()
        extctl("set-secrets", "--tenant", TENANT, ext_id, "--file", "-", env=admin, stdin='{"api_key": "dev-secret"}')
        token_file = DEV / "token"
        if not token_file.exists():
            user = json.loads(
                extctl("create-user", "--tenant", TENANT, "--role", "admin", "dev@example.com", env=admin)
            )
            token_file.write_text(extctl("create-token", user.get("id") or user["user_id"], env=admin))
            token_file.chmod(0o600)
        token = token_file.read_text().strip()
        hello_url = install_hello_js(gateway_url, runner_url)
    except SystemExit:
        stop_quiet(services)
        raise
    print(guide(runner_url=runner_url, gateway_url=gateway_url, redis_url=redis_url, store=store, digest=digest,
                ext_id=ext_id, token=token, state=state, hello_url=hello_url), flush=True)
    while all(proc.poll() is None for proc in procs):
        time.sleep(0.5)
    stop()


def guide(*, runner_url: str, gateway_url: str, redis_url: str | None, store: str, digest: str, ext_id: str,
          token: str, state: dict[str, str], hello_url: str) -> str:
    """What to try. Each line under "Set up" and "Try" is one shell command that works when pasted (after the
    set-up lines): one line each, URLs and JSON quoted, no line continuation inside quotes."""
    q = shlex.quote
    admin, service = state["admin_token"], state["service_token"]
    execute = json.dumps({
        "context": {"tenant_id": TENANT, "extension_id": ext_id, "content_hash": digest},
        "http": {"method": "GET", "path": "/context"},
    }, separators=(",", ":"))
    storage = json.dumps({"op": "put", "namespace": "prefs", "key": "theme", "value": "dark"}, separators=(",", ":"))
    user = f"-H {q('authorization: Bearer ' + token)}"
    to_runner = (f"-X POST -H {q('authorization: Bearer ' + service)} -H 'x-alga-tenant: {TENANT}' "
                 f"-H 'x-alga-extension: {ext_id}' -H 'content-type: application/json'")
    api = f"{gateway_url}/api/ext/{ext_id}"
    tail = (f"  extctl tail {ext_id}\n" if redis_url else "")
    no_tail = "" if redis_url else "(extctl tail needs redis-server: install it and run scripts/run again.)\n"
    redis_line = f"redis    {redis_url}   (debug events)" if redis_url else "redis    not installed: no debug tail"
    login = json.dumps({"token": token})
    return f"""
==> ext-runtime is running
    runner   {runner_url}   (trust bundle {DEV / 'keys' / 'signing.pem.pub'}, store {store})
    gateway  {gateway_url}   (tenant '{TENANT}', extension '{ext_id}', bundle {digest})
    {redis_line}

Tokens (kept in {DEV / 'dev.json'} and {DEV / 'token'}):
    gateway admin token (admin API, extctl register/install/...)   {admin}
    dev admin user token (/api/ext, extctl invoke/tail)           {token}

Set up this shell (extctl is in {BIN}):
  export PATH={q(str(BIN))}:"$PATH"
  export EXTCTL_GATEWAY={q(gateway_url)} EXTCTL_ADMIN_TOKEN={q(admin)} EXTCTL_TOKEN={q(token)}

Try:
  curl -s {user} {q(api + '/echo?hello=world')}
  curl -s {user} -H 'content-type: application/json' -d {q(storage)} {q(api + '/storage')}
  curl -s {user} {q(api + '/secrets?key=api_key')}
  curl -s {to_runner} -d {q(execute)} {q(runner_url + '/v1/execute')}
  curl -s {q(runner_url + '/metrics')} | grep runner_invocations
  curl -s -H {q('authorization: Bearer ' + admin)} {q(gateway_url + '/api/v1/tenants/' + TENANT + '/installs')}
  extctl invoke {ext_id} /context
  extctl invoke {ext_id} '/log?msg=hello'
{tail}
{no_tail}Host page ({ext_id}, and examples/hello-js: docs/authoring.md):
  {gateway_url}/msp/extensions/{ext_id}
  {hello_url}
    (a browser needs a session first: open {gateway_url}/healthz and run in its DevTools console
    fetch('/api/session', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: '{login}'}}) )

Ctrl-C stops everything.
"""


# -- examples/hello-js: the extension an author starts from (docs/authoring.md) -------------------------------------


def install_hello_js(gateway_url: str, runner_url: str) -> str:
    """Install examples/hello-js for the dev tenant with ``extctl dev --once`` (its build is cached by
    ``scripts/build-samples``; keys, tokens and the store come from the dev directory) and return its host page."""
    extctl("dev", str(ROOT / "examples" / "hello-js"), "--once", "--no-tail", "--dev-dir", str(DEV),
           "--gateway", gateway_url, "--runner", runner_url, "--tenant", TENANT, "--secret", "api_key=dev-secret")
    return f"{gateway_url}/msp/extensions/hello-js"


def _installed(gateway_url: str, state: dict[str, str], ext_id: str) -> bool:
    response = httpx.get(
        f"{gateway_url}/api/v1/tenants/{TENANT}/installs/{ext_id}",
        headers={"authorization": f"Bearer {state['admin_token']}"}, timeout=5,
    )
    return response.status_code == 200


def stop_quiet(procs: list[subprocess.Popen[bytes]]) -> None:  # on a failed start-up
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
