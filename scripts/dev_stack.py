"""Run the whole system on one machine with embedded defaults (used by ``scripts/run``).

Starts ``python -m runner_trio`` and ``python -m gateway_quart`` as child processes, publishes the
js-kitchen-sink sample (signed with a dev key the runner trusts), registers and installs it for the dev tenant
through ``extctl`` against the gateway's admin API, prints what to try, and stops both on Ctrl-C/SIGTERM.
Keys and tokens are made once and kept in ``var/dev/dev.json`` so URLs and tokens stay the same across runs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEV = Path(os.environ.get("EXT_DEV_DIR", ROOT / "var" / "dev")).resolve()
RUNNER_PORT = int(os.environ.get("RUNNER_PORT", "8080"))
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8000"))
SAMPLE = "js-kitchen-sink"
TENANT = "dev"
PY = sys.executable


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
        return state
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
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)
    return state


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
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "GATEWAY_", "EXT_", "STORAGE_"))}
    runner_env = {
        **base,
        "RUNNER_BIND": f"127.0.0.1:{RUNNER_PORT}",
        "RUNNER_VAR_DIR": str(DEV / "runner"),
        "BUNDLE_STORE_BASE": store,
        "SIGNING_TRUST_BUNDLE": str(keys / "signing.pem.pub"),
        "RUNNER_SERVICE_TOKEN": state["service_token"],
        "RUNNER_PUBLIC_BASE": runner_url,
        "RUNNER_SECRETS_PRIVATE_KEY": state["secrets_private"],
        "REGISTRY_BASE_URL": gateway_url,
        "EXT_UI_FRAME_ANCESTORS": gateway_url,
        "EXT_EGRESS_ALLOWLIST": "httpbin.org",
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
        "GATEWAY_ADMIN_TOKEN": state["admin_token"],
        "DEV_TENANT_ID": TENANT,
    }
    procs = [
        subprocess.Popen([PY, "-m", "runner_trio"], env=runner_env),
        subprocess.Popen([PY, "-m", "gateway_quart"], env=gateway_env),
    ]

    def stop(*_: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
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
            httpx.post(
                f"{gateway_url}/api/v1/tenants/{TENANT}/installs/{ext_id}/upgrade",
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
        service_token = state["service_token"]
        install_hello_js(gateway_url, runner_url)
    except SystemExit:
        stop_quiet(procs)
        raise
    print(f"""
==> ext-runtime is running
    runner   {runner_url}   (trust bundle {keys / 'signing.pem.pub'}, store {store})
    gateway  {gateway_url}   (tenant '{TENANT}', extension '{ext_id}', bundle {digest})

Try:
  curl -s -H 'authorization: Bearer {token}' {gateway_url}/api/ext/{ext_id}/echo?hello=world
  curl -s -H 'authorization: Bearer {token}' -H 'content-type: application/json' \\
       -d '{{"op":"put","namespace":"prefs","key":"theme","value":"dark"}}' {gateway_url}/api/ext/{ext_id}/storage
  curl -s -H 'authorization: Bearer {token}' '{gateway_url}/api/ext/{ext_id}/secrets?key=api_key'
  curl -s -X POST -H 'authorization: Bearer {service_token}' -H 'x-alga-tenant: {TENANT}' \\
       -H 'x-alga-extension: {ext_id}' -d '{{"context":{{"tenant_id":"{TENANT}","extension_id":"{ext_id}",\\
"content_hash":"{digest}"}},"http":{{"method":"GET","path":"/context"}}}}' {runner_url}/v1/execute
  curl -s {runner_url}/metrics | grep runner_invocations
  extctl invoke --gateway {gateway_url} --token {token} {ext_id} /context
Host page (log in first: POST {gateway_url}/api/session with {{"token": "<token>"}}):
  {gateway_url}/msp/extensions/{ext_id}
Token for the dev admin user: {token}      Ctrl-C stops both services.
""", flush=True)
    while all(proc.poll() is None for proc in procs):
        time.sleep(0.5)
    stop()


# -- examples/hello-js: the extension an author starts from (docs/authoring.md) -------------------------------------


def install_hello_js(gateway_url: str, runner_url: str) -> str:
    """Install examples/hello-js for the dev tenant with ``extctl dev --once`` (its build is cached by
    ``scripts/build-samples``; keys, tokens and the store come from the dev directory) and print its host page."""
    extctl("dev", str(ROOT / "examples" / "hello-js"), "--once", "--no-tail", "--dev-dir", str(DEV),
           "--gateway", gateway_url, "--runner", runner_url, "--tenant", TENANT, "--secret", "api_key=dev-secret")
    url = f"{gateway_url}/msp/extensions/hello-js"
    print(f"==> hello-js installed for tenant '{TENANT}'; its host page: {url}", flush=True)
    return url


def _installed(gateway_url: str, state: dict[str, str], ext_id: str) -> bool:
    response = httpx.get(
        f"{gateway_url}/api/v1/tenants/{TENANT}/installs/{ext_id}",
        headers={"authorization": f"Bearer {state['admin_token']}"}, timeout=5,
    )
    return response.status_code == 200


def stop_quiet(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
