"""Build an extension's component with its real toolchain, cached by content.

Two kinds of extension folder, told apart by what is in them:

- **js** (``package.json``): ``npm ci`` (with a ``package-lock.json``) or ``npm install`` (without), once per
  change of those files, then ``npm run build``, which must write the manifest's ``entry`` (default
  ``dist/main.wasm``) — the samples and templates call componentize-js there. A ``build:ui`` script, when
  present, runs on every build (a bundler takes milliseconds) and is not cached.
- **py** (``app.py``): ``componentize-py -d WIT -w runner componentize app -p . -o ENTRY``.

A component build takes seconds to minutes, so its output is kept in ``<cache>/components/<kind>-<key>.wasm``
(``cache`` = ``$EXT_BUILD_CACHE``, else ``$XDG_CACHE_HOME/ext-runtime``, else ``~/.cache/ext-runtime``), with
``key = sha256(RECIPE, toolchain version, WIT tree, source tree)``. The source tree leaves out what does not go
into the component: build outputs (``dist/``), installed packages (``node_modules/``), the UI (``ui/``,
``web/``), ``__pycache__``, ``.git``, ``manifest.json`` and ``*.md``. A hit is a copy. One build per key at a
time across processes (``flock`` on a per-key lock file); artifacts appear by atomic rename.

``scripts/build-samples`` and ``extctl build``/``extctl dev`` all build through :func:`build_extension`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from ._errors import CommandFailed

__all__ = [
    "CACHE_ENV",
    "COMPONENT_HEADER",
    "RECIPE",
    "BuildResult",
    "Kind",
    "build_extension",
    "default_cache_dir",
    "detect_kind",
    "source_hash",
]

Kind = Literal["js", "py"]

#: Bump when the build commands change in a way the key would not see.
RECIPE: Final = "extctl-build/1"
CACHE_ENV: Final = "EXT_BUILD_CACHE"
#: The first 8 bytes of a binary WebAssembly component (magic, then version 0x0d and layer 1).
COMPONENT_HEADER: Final = b"\x00asm\x0d\x00\x01\x00"
WORLD: Final = "runner"
DEFAULT_ENTRY: Final = "dist/main.wasm"
#: Directories that never go into the component key (outputs, installed packages, UI, caches).
SKIP_DIRS: Final = frozenset({"dist", "node_modules", "ui", "web", "__pycache__", ".git"})
_SKIP_FILES: Final = frozenset({"manifest.json"})
_NPM_STAMP: Final = ".extctl-npm-stamp"
#: Seconds one toolchain step may take before the build gives up.
DEFAULT_STEP_TIMEOUT_S: Final = 900.0

_FRAME_RE: Final = re.compile(r"\s+(\d+: |at )")

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_extension` did.

    Attributes:
        kind: ``js`` or ``py``.
        component: where the component was written.
        key: the cache key (hex).
        cached: the component came from the cache (no toolchain ran for it).
        seconds: wall time of the whole build.
        size: bytes of the component.
    """

    kind: Kind
    component: Path
    key: str
    cached: bool
    seconds: float
    size: int


def default_cache_dir() -> Path:
    """``$EXT_BUILD_CACHE``, else ``$XDG_CACHE_HOME/ext-runtime``, else ``~/.cache/ext-runtime``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ext-runtime"


def detect_kind(src: Path) -> Kind:
    """``js`` when ``src`` has a ``package.json``, ``py`` when it has an ``app.py``.

    Raises:
        CommandFailed: neither (``unknown_toolchain``).
    """
    if (src / "package.json").is_file():
        return "js"
    if (src / "app.py").is_file():
        return "py"
    raise CommandFailed(f"{src} has neither package.json (componentize-js) nor app.py (componentize-py)",
                        code="unknown_toolchain")


def _files(root: Path, *, skip_dirs: frozenset[str]) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and not d.startswith(".extctl"))
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if (rel in _SKIP_FILES or name.endswith(".md") or name.endswith(".pyc") or name == _NPM_STAMP
                    or not path.is_file()):
                continue
            yield rel, path


def source_hash(root: Path, *, skip_dirs: frozenset[str] = SKIP_DIRS) -> str:
    """sha256 over the sorted (relative path, content sha256) list of the files that go into the component."""
    digest = hashlib.sha256()
    for rel, path in sorted(_files(root, skip_dirs=skip_dirs)):
        digest.update(f"{rel}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _entry(src: Path) -> str:
    try:
        manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DEFAULT_ENTRY
    entry = manifest.get("entry") if isinstance(manifest, dict) else None
    return entry if isinstance(entry, str) and entry else DEFAULT_ENTRY


def _componentize_py() -> str:
    beside = Path(sys.executable).parent / "componentize-py"
    found = str(beside) if beside.exists() else shutil.which("componentize-py")
    if not found:
        raise CommandFailed("componentize-py is not installed (pip install componentize-py)", code="toolchain_missing")
    return found


def _npm() -> str:
    found = shutil.which("npm")
    if not found or not shutil.which("node"):
        raise CommandFailed("Node.js and npm are needed to build a js extension", code="toolchain_missing")
    return found


def _run(argv: list[str], *, cwd: Path, what: str, env: dict[str, str] | None = None) -> None:
    """Run one toolchain step; its output goes to stderr; a failure names the step and its last lines."""
    try:
        result = subprocess.run(  # noqa: S603 - argv built here from fixed tool names
            argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=DEFAULT_STEP_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"{what} took longer than {DEFAULT_STEP_TIMEOUT_S:g} s", code="build_failed") from None
    output = result.stdout.decode("utf-8", "replace")
    if result.returncode != 0:
        # Without the native stack frames some toolchains print: the Python or JS error is what the author needs.
        lines = [line for line in output.strip().splitlines() if not _FRAME_RE.match(line)]
        tail = "\n".join(lines[-25:])
        sys.stderr.write(tail + "\n")
        raise CommandFailed(f"{what} failed with exit status {result.returncode} (its output is above)",
                            code="build_failed")


def _toolchain_version(kind: Kind) -> str:
    if kind == "js":
        # componentize-js and every transitive package are pinned by package.json / package-lock.json, which are
        # part of the sources; node itself runs the toolchain.
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
        return f"node:{node.stdout.strip()}"
    out = subprocess.run([_componentize_py(), "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return f"componentize-py:{out.stdout.strip()}"


def _ensure_node_modules(src: Path, log: Log) -> None:
    """``npm ci`` (locked) or ``npm install`` (no lock file), only when those files changed since the last one."""
    npm = _npm()
    lock = src / "package-lock.json"
    want = hashlib.sha256((src / "package.json").read_bytes() + (lock.read_bytes() if lock.exists() else b""))
    stamp = src / "node_modules" / _NPM_STAMP
    if stamp.is_file() and stamp.read_text().strip() == want.hexdigest():
        return
    if lock.exists():
        log(f"npm ci in {src}")
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=src, what="npm ci")
    else:
        log(f"npm install in {src} (no package-lock.json)")
        _run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"], cwd=src,
             what="npm install")
    stamp.write_text(want.hexdigest())


def _npm_scripts(src: Path) -> dict[str, str]:
    try:
        scripts = json.loads((src / "package.json").read_text(encoding="utf-8")).get("scripts") or {}
    except (OSError, ValueError, AttributeError):
        scripts = {}
    return scripts if isinstance(scripts, dict) else {}


def _build_component(kind: Kind, src: Path, entry: str, wit: Path | None, out: Path, log: Log) -> None:
    """Run the toolchain; the component ends up at ``out``."""
    if kind == "js":
        if "build" not in _npm_scripts(src):
            raise CommandFailed(f"{src}/package.json has no 'build' script", code="build_failed")
        built = src / entry
        built.parent.mkdir(parents=True, exist_ok=True)  # componentize-js does not make the output's directory
        _run([_npm(), "run", "--silent", "build"], cwd=src, what="npm run build")
        if not built.is_file():
            raise CommandFailed(f"npm run build did not write {entry}", code="build_failed")
        shutil.copyfile(built, out)
        return
    if wit is None:
        raise CommandFailed(f"no WIT for {src}: pass --wit DIR or keep the world in {src}/wit/", code="build_failed")
    # No __pycache__ left in the sources; a fixed hash seed removes one source of variation.
    _run([_componentize_py(), "-q", "-d", str(wit), "-w", WORLD, "componentize", "app", "-p", ".", "-o", str(out)],
         cwd=src, what="componentize-py", env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"})


def _check_component(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(len(COMPONENT_HEADER))
    if head != COMPONENT_HEADER:
        raise CommandFailed(f"{path} is not a WebAssembly component (header {head.hex()})", code="build_failed")


def _copy_atomic(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_extension(
    src: Path,
    *,
    wit: Path | None = None,
    cache_dir: Path | None = None,
    log: Log | None = None,
) -> BuildResult:
    """Build the component of the extension folder ``src`` into its manifest's ``entry``, cached by content.

    Args:
        src: the extension folder (``manifest.json``, ``package.json`` or ``app.py``).
        wit: the WIT directory of the world; part of the key. Default: ``src/wit`` when present. (A js build
            script names its WIT itself; pass the same directory here so that the key sees it.)
        cache_dir: default :func:`default_cache_dir`.
        log: called with a line for each slow step (``npm ci``…); default: stderr.

    Raises:
        CommandFailed: no known toolchain, a toolchain missing, or the build failed (``build_failed``).
    """
    started = time.monotonic()
    say: Log = log or (lambda line: print(f"==> {line}", file=sys.stderr))
    src = src.resolve()
    kind = detect_kind(src)
    if wit is None and (src / "wit").is_dir():
        wit = src / "wit"
    if wit is not None:
        wit = wit.resolve()  # the toolchain runs in src
    entry = _entry(src)
    dest = src / entry
    if kind == "js":
        _ensure_node_modules(src, say)
    key_parts = [RECIPE, kind, _toolchain_version(kind), f"entry:{entry}",
                 f"wit:{source_hash(wit) if wit is not None else '-'}", f"src:{source_hash(src)}"]
    key = hashlib.sha256("\n".join(key_parts).encode()).hexdigest()
    components = (cache_dir or default_cache_dir()) / "components"
    components.mkdir(parents=True, exist_ok=True)
    cached_file = components / f"{kind}-{key}.wasm"
    cached = True
    # One build per key at a time, across every checkout sharing the cache: a second build waits for the first
    # and then finds its artifact. (The lock file stays; it is empty and per key.)
    with open(components / f".{kind}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached_file.is_file():
            cached = False
            say(f"building {src.name} ({kind}) with its toolchain")
            fd, tmp_name = tempfile.mkstemp(prefix=f".{kind}-", suffix=".wasm", dir=components)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                _build_component(kind, src, entry, wit, tmp, say)
                _check_component(tmp)
                os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is shared by checkouts
                os.replace(tmp, cached_file)  # atomic: a concurrent build sees the whole file or none
            finally:
                tmp.unlink(missing_ok=True)
    if not dest.is_file() or dest.read_bytes() != cached_file.read_bytes():
        _copy_atomic(cached_file, dest)
    if kind == "js" and "build:ui" in _npm_scripts(src):
        _run([_npm(), "run", "--silent", "build:ui"], cwd=src, what="npm run build:ui")
    return BuildResult(kind, dest, key, cached, time.monotonic() - started, dest.stat().st_size)
