"""Child process for the restart test: a fresh Engine loads a component through the cache, prints the stats.

Usage: python artifact_child.py ROOT HEX TARGET
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import trio
import wasmtime
from wasmtime.component import Component

from cache import ArtifactCache, DiskCache


async def main(root: Path, hex_digest: str, target: str) -> None:
    engine = wasmtime.Engine()
    compiled_from_bytes = 0

    async def fill(dest: Path) -> None:
        raise AssertionError("the bundle should be cached on disk")

    async with DiskCache(root) as disk:
        artifacts: ArtifactCache[Component] = ArtifactCache(disk)
        async with disk.entry(hex_digest, fill) as entry:

            async def build() -> Component:
                nonlocal compiled_from_bytes
                compiled_from_bytes += 1
                return Component(engine, await entry.open_verified("entry.wasm"))

            component = await artifacts.load_or_build(
                hex_digest,
                target,
                build=build,
                serialize=lambda c: c.serialize(),
                deserialize_file=lambda p: Component.deserialize_file(engine, str(p)),
                entry=entry,
            )
        stats = dataclasses.asdict(artifacts.statistics())
    print(json.dumps({"type": type(component).__name__, "compiled": compiled_from_bytes, "stats": stats}))


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2], sys.argv[3])
