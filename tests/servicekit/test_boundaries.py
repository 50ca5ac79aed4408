"""servicekit depends on neither service and not on wasmtime: importing it (and its command) loads none."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import servicekit, servicekit.__main__
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"runner_trio", "gateway_quart", "wasmtime"})
print(",".join(loaded))
"""


def test_importing_servicekit_loads_no_service_and_no_wasmtime() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
