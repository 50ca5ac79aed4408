"""What every benchmark shares: the run's options, its temp workspace, bundles, statistics and result rows."""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import secrets
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio
import wasmtime

from bundles import pack_directory, publish_bundle
from bundles.store import open_store

ROOT: Final = Path(__file__).resolve().parents[1]
SAMPLES: Final = ROOT / "samples"
BENCH_DIR: Final = Path(__file__).resolve().parent
WAT_DIR: Final = ROOT / "tests" / "guests" / "wat"
SERVICE_TOKEN: Final = secrets.token_urlsafe(24)  # per run: the services only live for it
TENANT: Final = "bench-tenant"
EXTENSION: Final = "bench-ext"

_INCLUDE: Final = re.compile(r"^\s*;;\s*@include\s+(\S+)\s*$", re.MULTILINE)


# -- statistics ----------------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    """Seconds as a short millisecond (or second) figure."""
    if math.isnan(seconds):
        return "n/a"
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e3:.3f} ms"


# -- results -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One measured comparison.

    Attributes:
        bench: the benchmark's name (``invoke``, ``http`` …).
        what: what was measured.
        left: the measured side, formatted (``runner execute() 2.1 ms``).
        right: the reference side, formatted.
        ratio: the headline figure, formatted (``1.12×``), or a verdict.
        aim: the DESIGN aim (``≤ 1.3×``), empty for an informational row.
        ok: whether the aim was met; None for an informational row.
    """

    bench: str
    what: str
    left: str
    right: str
    ratio: str
    aim: str = ""
    ok: bool | None = None

    @property
    def mark(self) -> str:
        return "" if self.ok is None else ("✓" if self.ok else "✗")


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        aim = f"  aim {row.aim} {row.mark}" if row.aim else ""
        print(f"  {row.what}\n      {row.left}  |  {row.right}  ->  {row.ratio}{aim}", flush=True)

    def markdown(self) -> str:
        lines = [
            "| bench | what | measured | reference | result | aim | |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(f"| {r.bench} | {r.what} | {r.left} | {r.right} | {r.ratio} | {r.aim} | {r.mark} |")
        return "\n".join(lines)


# -- the run -------------------------------------------------------------------------------------------------


def pick(quick: bool, quick_value: Any, full_value: Any) -> Any:
    return quick_value if quick else full_value


@dataclass
class Workspace:
    """The run's temp directory: one file:// bundle store and one warm cache root shared by the benchmarks.

    Runners of different benchmarks share the warm cache root (the cache allows several processes on one root),
    so a toolchain-built sample compiles once per run; benchmarks that need a cold cache make their own root.
    """

    base: Path
    quick: bool
    report: Report
    published: dict[str, str] = field(default_factory=dict)
    _counter: int = 0

    @property
    def store_dir(self) -> Path:
        return self.base / "store"

    @property
    def store_uri(self) -> str:
        return self.store_dir.resolve().as_uri()

    @property
    def warm_cache(self) -> Path:
        return self.base / "cache-warm"

    def fresh_dir(self, prefix: str) -> Path:
        self._counter += 1
        path = self.base / f"{prefix}-{self._counter}"
        path.mkdir(parents=True)
        return path

    async def publish_dir(self, src: Path) -> str:
        """Pack and publish a bundle directory; returns the bare hex content hash."""
        data = await trio.to_thread.run_sync(pack_directory, src)
        store = open_store(self.store_uri)
        try:
            content_hash = await publish_bundle(store, data)
        finally:
            await store.aclose()
        return content_hash.removeprefix("sha256:")

    async def publish_sample(self, sample: str) -> str:
        """Publish a toolchain-built sample (manifest, dist/main.wasm, ui/)."""
        if sample not in self.published:
            built = SAMPLES / sample / "dist" / "main.wasm"
            if not built.exists():
                raise RuntimeError(f"{sample} is not built: run scripts/build-samples")
            dest = self.base / f"stage-{sample}"
            (dest / "dist").mkdir(parents=True)
            shutil.copy(SAMPLES / sample / "manifest.json", dest / "manifest.json")
            shutil.copy(built, dest / "dist" / "main.wasm")
            shutil.copytree(SAMPLES / sample / "ui", dest / "ui")
            self.published[sample] = await self.publish_dir(dest)
        return self.published[sample]

    async def publish_component(self, name: str, component: bytes) -> str:
        """Publish a bundle holding ``component`` (a WAT guest) under a minimal manifest."""
        if name not in self.published:
            src = self.base / f"src-{name}"
            src.mkdir(parents=True)
            manifest = {"name": f"bench.{name}", "publisher": "bench", "version": "1.0.0", "runtime": "wasm-js@1",
                        "entry": "entry.wasm", "capabilities": []}
            (src / "manifest.json").write_text(json.dumps(manifest))
            (src / "entry.wasm").write_bytes(component)
            self.published[name] = await self.publish_dir(src)
        return self.published[name]


# -- guests --------------------------------------------------------------------------------------------------


def _expand(text: str) -> str:
    return _INCLUDE.sub(lambda m: (WAT_DIR / m.group(1)).read_text(encoding="utf-8"), text)


@functools.cache
def wat_guest(name: str) -> bytes:
    """A test guest of ``tests/guests/wat`` (``echo``, …) as a component binary."""
    return bytes(wasmtime.wat2wasm(_expand((WAT_DIR / f"{name}.wat").read_text(encoding="utf-8"))))


@functools.cache
def burn_guest(iterations: int) -> bytes:
    """``benchmarks/burn.wat``: a guest spinning ``iterations`` rounds of arithmetic per call."""
    text = (BENCH_DIR / "burn.wat").read_text(encoding="utf-8").replace("@ITERATIONS@", str(iterations))
    return bytes(wasmtime.wat2wasm(_expand(text)))


# -- /v1/execute documents -----------------------------------------------------------------------------------


def execute_doc(content_hash: str, path: str = "/", *, method: str = "GET", body: bytes | None = None,
                query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                tenant: str = TENANT, extension: str = EXTENSION) -> dict[str, Any]:
    return {
        "context": {"tenant_id": tenant, "extension_id": extension, "content_hash": content_hash,
                    "install_id": "bench-install", "config": {"mode": "bench"}},
        "http": {"method": method, "path": path, "query": query or {}, "headers": headers or {},
                 "body_b64": base64.b64encode(body).decode() if body is not None else None},
        "limits": {},
        "providers": [],
    }


def execute_headers(tenant: str = TENANT, extension: str = EXTENSION) -> dict[str, str]:
    return {"authorization": f"Bearer {SERVICE_TOKEN}", "x-alga-tenant": tenant, "x-alga-extension": extension,
            "content-type": "application/json"}


def check_ok(result: dict[str, Any], what: str) -> None:
    """Fail loudly when an invocation did not succeed: a benchmark of errors measures nothing."""
    if result.get("error") is not None or not 200 <= int(result.get("status", 0)) < 300:
        raise RuntimeError(f"{what}: unexpected result {json.dumps(result)[:300]}")


def log(message: str) -> None:
    print(f"    · {message}", file=sys.stderr, flush=True)
