"""``python -m benchmarks [--quick] [NAME ...]``: run the benchmarks and print what each measured.

Each benchmark prints what it measured, both sides, the ratio and the DESIGN aim with ✓ or ✗; a markdown table
of every row follows at the end. The exit status is 0 when every benchmark ran (missing an aim is a finding,
not a failure) and 1 when one crashed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Final

import trio

from ._common import Report, Workspace

# name -> (module, one line); run in this order (cheapest first, the warm cache filled by `invoke`).
BENCHMARKS: Final = {
    "invoke": ("_invoke", "invocation overhead: execute()/invoke() vs bare wasmtime-py instantiate+call"),
    "bodies": ("_bodies", "list<u8> round trips, fast path vs stock wasmtime-py conversion"),
    "http": ("_http", "/v1/execute throughput and latency vs a bare Quart-trio endpoint"),
    "gateway": ("_gateway", "p50 latency through the gateway minus direct to the runner"),
    "memory": ("_memory", "RSS of an idle runner and per concurrent in-flight guest"),
    "scale": ("_scale", "throughput of 2 runner processes vs 1; through a gateway with 1, 2, 3 runners"),
    "workers": ("_workers", "a default runner (one worker per CPU, one port) vs RUNNER_WORKERS=1"),
    "herd": ("_herd", "50 concurrent requests on an uncached hash: 1 fetch, 1 compile"),
    "cold": ("_cold", "first request after restart: precompiled artifact vs compile from bytes"),
    "hostile": ("_hostile", "each hostile guest's outcome and time past its deadline; a neighbour's p99 beside them"),
    "fairness": ("_fairness", "a steady tenant's p99 beside another's 10:1 burst vs alone, fair queue and fifo"),
    "journal": ("_journal", "invocation time with the invocation journal recording every call (all) vs none"),
    "soak": ("_soak", "10,000 mixed calls through gateway + 2 runners: none lost, RSS and files (only when named)"),
}
ON_REQUEST: Final = frozenset({"soak"})
"""Benchmarks left out of a run that names none: they check more than they compare, and take longer."""


def _parse(argv: list[str]) -> argparse.Namespace:
    listing = "\n".join(f"  {name:<8} {line}" for name, (_, line) in BENCHMARKS.items())
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measure the DESIGN's performance aims, each side by side in one run.",
        epilog=f"benchmarks (default: all but {', '.join(sorted(ON_REQUEST))}, in this order):\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all but soak)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (about 5 minutes in all on 2 cores)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs of the services)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    return args


async def _run_all(names: list[str], ws: Workspace) -> list[str]:
    crashed: list[str] = []
    for name in names:
        module, line = BENCHMARKS[name]
        print(f"\n== {name}: {line}", flush=True)
        started = time.perf_counter()
        try:
            bench = importlib.import_module(f"benchmarks.{module}")
            await bench.run(ws)
        except Exception:
            traceback.print_exc()
            print(f"   {name} CRASHED", flush=True)
            crashed.append(name)
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return crashed


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {system}, Python {platform.python_version()}"


def _load() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every figure here."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    # The in-process runtime warns about development settings (no trust bundle) on every bundle: noise here.
    logging.basicConfig(level=logging.ERROR)
    names = [name for name in BENCHMARKS if name in args.names or (not args.names and name not in ON_REQUEST)]
    base = Path(tempfile.mkdtemp(prefix="ext-bench-"))
    report = Report()
    ws = Workspace(base=base, quick=args.quick, report=report)
    started = time.perf_counter()
    print(f"scripts/bench{' --quick' if args.quick else ''}: {', '.join(names)}")
    print(f"machine: {_machine()}; temp dir {base}")
    print(f"load average before: {_load()}", flush=True)
    try:
        crashed = trio.run(_run_all, names, ws)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    total = time.perf_counter() - started
    print(f"\n== summary ({datetime.date.today().isoformat()}, {total:.0f} s{', quick' if args.quick else ''}; "
          f"load average after: {_load()})\n")
    print(report.markdown())
    missed = [r for r in report.rows if r.ok is False]
    print(f"\n{sum(r.ok is True for r in report.rows)} aims met, {len(missed)} missed"
          + (f"; crashed: {', '.join(crashed)}" if crashed else ""))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
