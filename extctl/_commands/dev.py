"""``extctl dev DIR``: the dev loop (like ``spin watch`` / ``wash dev``) against a running gateway and runner.

Each round: build the component (``extctl._build``: componentize-js / componentize-py, cached by content),
pack ``manifest.json`` + the component + ``ui/`` (zstd level 3: seconds count here), sign with the dev key,
publish to the bundle store, register the new content hash with the gateway and move the dev tenant's install
to it (installing it the first time, granting what the manifest asks for). Then it prints the API and UI URLs,
follows the debug events (``extctl tail``) and waits for a file to change (``watchfiles``), to go again: a new
content hash each time, nothing to clean up. A failed round prints why and waits for the next change.

Where things are, each from its flag, else its variable, else the dev stack's directory (``--dev-dir``, default
``$EXT_DEV_DIR`` or ``./var/dev``, what ``scripts/run`` writes):

| what | flag | variable | from the dev directory |
|---|---|---|---|
| gateway | ``--gateway`` | ``EXTCTL_GATEWAY`` | (``http://127.0.0.1:8000``) |
| admin token | ``--admin-token`` | ``EXTCTL_ADMIN_TOKEN`` | ``dev.json`` ``admin_token`` |
| user token (tail, curl) | ``--token`` | ``EXTCTL_TOKEN`` | ``token`` |
| signing key | ``--key`` | ``EXTCTL_SIGNING_KEY`` | ``keys/signing.pem`` |
| bundle store | ``--store`` | ``BUNDLE_STORE_BASE`` | ``bundles/`` |
| runner (warm-up) | ``--runner`` | ``EXTCTL_RUNNER`` | (``http://127.0.0.1:8080``) |
| runner service token | ``--service-token`` | ``RUNNER_SERVICE_TOKEN`` | ``dev.json`` ``service_token`` |

With a runner service token, each round asks the runner to compile the new component (``POST /v1/warmup``)
before moving the install, so the first call after ``installed`` does not wait for a compile (seconds for a
component of a few MB); without one, that first call compiles it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import httpx
import trio
import watchfiles

from bundles import Manifest, content_hash, pack_directory, parse_manifest, publish_bundle, sign_bundle
from bundles.store import open_store

from .._build import build_extension
from .._errors import CommandFailed, ExtctlError, UsageError
from ._base import Command, read_capped
from ._gateway import (
    ADMIN_TOKEN_ENV,
    DEFAULT_GATEWAY,
    DEFAULT_TIMEOUT_S,
    GATEWAY_ENV,
    TOKEN_ENV,
    GatewayClient,
    segment,
)
from ._inputs import parse_pairs
from .new import NAME_RE
from .tail import tail

__all__ = ["COMMAND", "DEV_DIR_ENV", "KEY_ENV", "DevOptions", "DevSession", "dev_loop"]

DEV_DIR_ENV: Final = "EXT_DEV_DIR"
KEY_ENV: Final = "EXTCTL_SIGNING_KEY"
STORE_ENV: Final = "BUNDLE_STORE_BASE"
RUNNER_ENV: Final = "EXTCTL_RUNNER"
SERVICE_TOKEN_ENV: Final = "RUNNER_SERVICE_TOKEN"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_RUNNER: Final = "http://127.0.0.1:8080"
#: Seconds a warm-up (one compile of the component) may take on a loaded machine.
WARMUP_TIMEOUT_S: Final = 300.0
DEFAULT_TENANT: Final = "dev"
#: zstd level of the dev bundles: level 19 (``extctl pack``) takes seconds on a 19 MB Python component.
DEV_COMPRESSION_LEVEL: Final = 3
#: Milliseconds of quiet before a burst of file events becomes one rebuild.
DEFAULT_DEBOUNCE_MS: Final = 300
#: Directories whose changes never start a round: outputs and installed packages (any depth).
IGNORED_DIRS: Final = ("dist", "node_modules", "__pycache__", ".git")


@dataclass(frozen=True)
class DevOptions:
    """Everything one dev session needs, resolved from flags, variables and the dev directory."""

    src: Path
    extension_id: str
    tenant: str
    gateway: str
    admin_token: str
    store: str
    key: bytes | None
    token: str | None = None
    runner: str | None = None
    service_token: str | None = None
    wit: Path | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S


def _say(line: str) -> None:
    print(line, flush=True)


@dataclass
class DevSession:
    """One extension folder being developed: deploys rounds and remembers what it installed."""

    options: DevOptions
    last_hash: str | None = None
    rounds: int = 0

    def _stage(self, work: Path, entry: Path, ui_dir: str | None) -> bytes:
        """The bundle: manifest, component and UI only (no sources, no toolchain)."""
        src = self.options.src
        stage = work / "bundle"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        shutil.copy(src / "manifest.json", stage / "manifest.json")
        rel_entry = entry.relative_to(src)
        (stage / rel_entry).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(entry, stage / rel_entry)
        if ui_dir and (src / ui_dir).is_dir():
            shutil.copytree(src / ui_dir, stage / ui_dir,
                            ignore=shutil.ignore_patterns("__pycache__", "node_modules", ".*"))
        return pack_directory(stage, level=DEV_COMPRESSION_LEVEL)

    def _build_and_pack(self, work: Path) -> tuple[bytes, str, Manifest]:
        src = self.options.src
        result = build_extension(src, wit=self.options.wit, log=lambda line: _say(f"==> {line}"))
        manifest = parse_manifest((src / "manifest.json").read_bytes())
        ui_dir = manifest.ui.entry.split("/", 1)[0] if manifest.ui is not None and "/" in manifest.ui.entry else None
        data = self._stage(work, result.component, ui_dir)
        how = "cached" if result.cached else "built"
        _say(f"==> {how} {result.kind} component in {result.seconds:.1f}s ({result.size} bytes)")
        return data, content_hash(data), manifest

    async def deploy(self, work: Path) -> str | None:
        """One round; returns the content hash installed (``None`` when nothing changed)."""
        opts = self.options
        # Abandoned on cancel (Ctrl-C, SIGTERM): a toolchain run finishes on its own and only fills the cache.
        data, digest, manifest = await trio.to_thread.run_sync(self._build_and_pack, work, abandon_on_cancel=True)
        if digest == self.last_hash:
            _say(f"==> unchanged ({digest}): nothing to install")
            return None
        signature = sign_bundle(data, opts.key) if opts.key is not None else None
        store = open_store(opts.store, env=os.environ)
        try:
            await publish_bundle(store, data, signature)
        finally:
            await store.aclose()
        if opts.runner is not None and opts.service_token is not None:
            await trio.to_thread.run_sync(self._warmup, digest, abandon_on_cancel=True)
        capabilities = list(manifest.capabilities)
        await trio.to_thread.run_sync(self._install, digest, capabilities)
        self.last_hash = digest
        self.rounds += 1
        _say(f"==> installed {digest} for tenant {opts.tenant} as {opts.extension_id} (round {self.rounds})")
        return digest

    def _warmup(self, digest: str) -> None:
        opts = self.options
        try:
            response = httpx.post(f"{opts.runner}/v1/warmup", json={"content_hash": digest}, timeout=WARMUP_TIMEOUT_S,
                                  headers={"authorization": f"Bearer {opts.service_token}"})
        except httpx.HTTPError as exc:
            _say(f"==> warm-up skipped: {type(exc).__name__} (the first call compiles the component)")
            return
        if not response.is_success:
            _say(f"==> warm-up refused: HTTP {response.status_code} (the first call compiles the component)")

    def _install(self, digest: str, capabilities: list[str]) -> None:
        opts = self.options
        tenant, ext = segment(opts.tenant), segment(opts.extension_id)
        with GatewayClient(opts.gateway, opts.admin_token, timeout_s=opts.timeout_s) as client:
            client.call("POST", "/api/v1/extensions", {"content_hash": digest, "extension_id": opts.extension_id})
            try:
                client.call("GET", f"/api/v1/tenants/{tenant}/installs/{ext}")
                installed = True
            except CommandFailed as exc:
                if exc.code not in ("not_installed", "http_404"):
                    raise
                installed = False
            if not installed:
                client.call("POST", f"/api/v1/tenants/{tenant}/installs", {
                    "extension_id": opts.extension_id, "content_hash": digest,
                    "granted_capabilities": capabilities, "config": dict(opts.config),
                })
            else:
                held = client.call("POST", f"/api/v1/tenants/{tenant}/installs/{ext}/upgrade", {"content_hash": digest})
                if isinstance(held, dict) and held.get("status") == "pending_consent":
                    # The author's own dev tenant: what the new build asks for more is approved at once.
                    client.call("POST", f"/api/v1/tenants/{tenant}/installs/{ext}/consent",
                                {"content_hash": digest, "reason": "extctl dev"})
                # A capability the manifest newly asks for is granted too: this is the author's own dev tenant.
                client.call("PUT", f"/api/v1/tenants/{tenant}/installs/{ext}/capabilities",
                            {"capabilities": capabilities})
                if opts.config:
                    client.call("PUT", f"/api/v1/tenants/{tenant}/installs/{ext}/config", {"config": dict(opts.config)})
            if opts.secrets:
                client.call("PUT", f"/api/v1/tenants/{tenant}/installs/{ext}/secrets", {"secrets": dict(opts.secrets)})

    def print_urls(self, manifest_endpoints: list[tuple[str, str]]) -> None:
        opts = self.options
        api = f"{opts.gateway}/api/ext/{segment(opts.extension_id)}"
        _say(f"    API  {api}/")
        _say(f"    UI   {opts.gateway}/msp/extensions/{segment(opts.extension_id)}   (the host page; log in first)")
        credential = "$EXTCTL_TOKEN" if opts.token is None else opts.token
        for method, path in manifest_endpoints:
            if method == "GET" and ":" not in path:
                _say(f"    try  curl -s -H 'authorization: Bearer {credential}' {api}{path}")
                break


def _endpoints(src: Path) -> list[tuple[str, str]]:
    try:
        manifest = parse_manifest((src / "manifest.json").read_bytes())
    except Exception:
        return []
    return [(e.method, e.path) for e in manifest.endpoints or ()]


async def _tail_forever(opts: DevOptions) -> None:
    if opts.token is None:
        _say(f"==> no user token (--token, ${TOKEN_ENV} or the dev directory's 'token'): not tailing debug events")
        return
    _say(f"==> tailing debug events of {opts.extension_id}")
    try:
        await tail(opts.gateway, opts.extension_id, opts.token)
    except ExtctlError as exc:
        _say(f"==> tail stopped: {exc.code}: {exc.message} (the dev loop goes on)")


def _watch_filter() -> watchfiles.DefaultFilter:
    return watchfiles.DefaultFilter(ignore_dirs=(*watchfiles.DefaultFilter.ignore_dirs, *IGNORED_DIRS))


async def _round(session: DevSession, work: Path) -> str | None:
    try:
        digest = await session.deploy(work)
        if digest is not None and session.rounds == 1:  # the first install: say where it is
            session.print_urls(_endpoints(session.options.src))
        return digest
    except (ExtctlError, OSError, ValueError) as exc:
        code = getattr(exc, "code", type(exc).__name__)
        _say(f"==> round failed: {code}: {' '.join(str(exc).split())} (fix it and save: the loop goes on)")
    except Exception as exc:
        _say(f"==> round failed: {getattr(exc, 'code', type(exc).__name__)}: {exc} (the loop goes on)")
    return None


def _snapshot(src: Path) -> frozenset[tuple[str, int, int]]:
    """(path, mtime, size) of every file the watcher looks at: what changed while a round ran."""
    accept = _watch_filter()
    out: set[tuple[str, int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if accept(watchfiles.Change.modified, os.path.join(dirpath, d))]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if accept(watchfiles.Change.modified, path):
                try:
                    info = os.stat(path)
                except OSError:
                    continue
                out.add((path, info.st_mtime_ns, info.st_size))
    return frozenset(out)


@dataclass
class _Changes:
    """What the watcher saw since the last round started."""

    names: set[str] = field(default_factory=set)
    event: trio.Event = field(default_factory=trio.Event)

    def take(self) -> list[str]:
        names, self.names, self.event = sorted(self.names), set(), trio.Event()
        return names


async def _watch(src: Path, changes: _Changes, *, debounce_ms: int, force_polling: bool) -> None:
    async for batch in watchfiles.awatch(
        src, watch_filter=_watch_filter(), debounce=debounce_ms, step=50, force_polling=force_polling,
    ):
        changes.names.update(Path(path).name for _, path in batch)
        changes.event.set()


async def dev_loop(
    opts: DevOptions, *, once: bool = False, do_tail: bool = True, force_polling: bool = False,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
) -> DevSession:
    """Deploy ``opts.src`` now and, unless ``once``, again on every change until cancelled.

    The watcher runs from before the first round, and a round that saw its folder change while it ran is
    followed by another: an edit saved during a build is never lost.

    Raises:
        CommandFailed: with ``once``, the single round failed.
    """
    session = DevSession(opts)
    with tempfile.TemporaryDirectory(prefix="extctl-dev-") as tmp:
        work = Path(tmp)
        if once:
            await session.deploy(work)
            session.print_urls(_endpoints(opts.src))
            return session
        changes = _Changes()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(_watch, opts.src, changes, debounce_ms=debounce_ms,
                                       force_polling=force_polling))
            tailing = False
            while True:
                changes.take()  # what happened before this round is in it
                before = await trio.to_thread.run_sync(_snapshot, opts.src)
                await _round(session, work)
                if do_tail and not tailing:
                    nursery.start_soon(_tail_forever, opts)
                    tailing = True
                if await trio.to_thread.run_sync(_snapshot, opts.src) != before:
                    _say("==> changed while building: again")
                    continue
                if not changes.event.is_set():
                    _say(f"==> watching {opts.src} for changes (Ctrl-C stops)")
                await changes.event.wait()
                names = changes.take()
                _say(f"==> changed: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}")


# -- command line ---------------------------------------------------------------------------------------------------


def _dev_dir(args: argparse.Namespace) -> Path | None:
    raw = args.dev_dir or os.environ.get(DEV_DIR_ENV)
    if raw:
        path = Path(raw)
        if not path.is_dir():
            raise UsageError(f"--dev-dir {path} is not a directory")
        return path
    default = Path("var") / "dev"
    return default if default.is_dir() else None


def _dev_json(dev: Path | None) -> dict[str, Any]:
    if dev is None or not (dev / "dev.json").is_file():
        return {}
    try:
        data = json.loads((dev / "dev.json").read_text())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _pick(flag: str | None, env: str, fallback: str | None) -> str | None:
    value = flag or os.environ.get(env) or fallback
    return value.strip() if value else None


def resolve_options(args: argparse.Namespace) -> DevOptions:
    """The :class:`DevOptions` of a command line (flags, then variables, then the dev directory)."""
    src: Path = args.dir.resolve()
    if not (src / "manifest.json").is_file():
        raise UsageError(f"{args.dir} has no manifest.json (make one with: extctl new NAME)")
    dev = _dev_dir(args)
    state = _dev_json(dev)
    extension_id = args.extension_id or src.name
    if not NAME_RE.fullmatch(extension_id):
        raise UsageError(f"the folder name {src.name!r} is not an extension id: pass --extension-id ID")
    gateway = (_pick(args.gateway, GATEWAY_ENV, None) or DEFAULT_GATEWAY).rstrip("/")
    admin_token = _pick(args.admin_token, ADMIN_TOKEN_ENV, state.get("admin_token"))
    if not admin_token:
        raise UsageError(f"no admin token: pass --admin-token, set ${ADMIN_TOKEN_ENV} or --dev-dir (dev.json)")
    token_file = dev / "token" if dev is not None else None
    token = _pick(args.token, TOKEN_ENV, token_file.read_text() if token_file and token_file.is_file() else None)
    store = _pick(args.store, STORE_ENV, (dev / "bundles").resolve().as_uri() if dev is not None else None)
    if not store:
        raise UsageError(f"no bundle store: pass --store URL, set ${STORE_ENV} or --dev-dir")
    key_path = _pick(args.key, KEY_ENV, str(dev / "keys" / "signing.pem") if dev is not None else None)
    key: bytes | None = None
    if key_path and Path(key_path).is_file():
        key = read_capped(Path(key_path), max_bytes=64 * 1024, what="key")
    elif args.key:
        raise UsageError(f"--key {args.key} does not exist")
    else:
        print("warning: no signing key: bundles go out unsigned (a runner with a trust bundle refuses them)",
              file=sys.stderr)
    if not args.timeout > 0:
        raise UsageError("--timeout must be positive")
    service_token = _pick(args.service_token, SERVICE_TOKEN_ENV, state.get("service_token"))
    runner = (_pick(args.runner, RUNNER_ENV, None) or DEFAULT_RUNNER).rstrip("/")
    return DevOptions(
        src=src, extension_id=extension_id, tenant=args.tenant, gateway=gateway, admin_token=admin_token,
        store=store, key=key, token=token, runner=runner, service_token=service_token,
        wit=args.wit, config=parse_pairs(args.config, "--config"),
        secrets=parse_pairs(args.secret, "--secret"), timeout_s=args.timeout,
    )


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="DIR", help="the extension folder (manifest.json at its root)")
    parser.add_argument("--extension-id", metavar="ID", help="the id to register (default: the folder's name)")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help=f"install for this tenant (default: {DEFAULT_TENANT})")
    parser.add_argument("--dev-dir", metavar="DIR",
                        help=f"the dev stack's directory (default: ${DEV_DIR_ENV}, else ./var/dev when present)")
    parser.add_argument("--gateway", metavar="URL",
                        help=f"gateway base URL (default: ${GATEWAY_ENV} or {DEFAULT_GATEWAY})")
    parser.add_argument("--admin-token", metavar="TOKEN", help=f"default: ${ADMIN_TOKEN_ENV}, else the dev directory's")
    parser.add_argument("--token", metavar="TOKEN", help=f"a user's token for the tail (default: ${TOKEN_ENV}, else "
                        "the dev directory's)")
    parser.add_argument("--key", metavar="PEM", help=f"signing key (default: ${KEY_ENV}, else the dev directory's)")
    parser.add_argument("--store", metavar="URL",
                        help=f"bundle store (default: ${STORE_ENV}, else the dev directory's)")
    parser.add_argument("--runner", metavar="URL",
                        help=f"runner to warm up (default: ${RUNNER_ENV} or {DEFAULT_RUNNER})")
    parser.add_argument("--service-token", metavar="TOKEN",
                        help=f"the runner's service token, for the warm-up (default: ${SERVICE_TOKEN_ENV}, else the "
                        "dev directory's)")
    parser.add_argument("--wit", type=Path, metavar="DIR", help="the WIT directory (default: DIR/wit)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="install config; repeatable")
    parser.add_argument("--secret", action="append", default=[], metavar="KEY=VALUE",
                        help="install secret (sealed by the gateway); repeatable")
    parser.add_argument("--once", action="store_true", help="one round, then exit (no watch, no tail)")
    parser.add_argument("--no-tail", action="store_true", help="do not follow the debug events")
    parser.add_argument("--poll", action="store_true", help="poll for changes (for file systems without inotify)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"give up on one gateway call after this long (default: {DEFAULT_TIMEOUT_S:g})")


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            _say(f"==> {signal.Signals(signum).name}: stopping")
            scope.cancel()
            return


def _run(args: argparse.Namespace) -> int:
    opts = resolve_options(args)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            # SIGTERM (and SIGINT, also where a shell started us with it ignored) ends the loop cleanly.
            nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
            await dev_loop(opts, once=args.once, do_tail=not args.no_tail, force_polling=args.poll)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return 0


COMMAND = Command(name="dev", help="dev loop: build, install for the dev tenant, tail, and again on every change",
                  configure=_configure, run=_run)
