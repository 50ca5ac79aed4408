"""The engine's public names, and its independence from the capabilities (checked on the source, by AST)."""

from __future__ import annotations

import ast
from pathlib import Path

import runner_trio.engine as engine

ENGINE_DIR = Path(engine.__file__).parent
FORBIDDEN = "runner_trio.capabilities"

ENGINE_NAMES = {
    "COMPONENT_HEADER", "DEFAULT_EPOCH_TICK", "DEFAULT_MAX_INSTANCES", "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_MEMORIES", "DEFAULT_MAX_OUTPUT_BYTES", "DEFAULT_MAX_OUTPUT_LINES", "DEFAULT_MAX_TABLES",
    "DEFAULT_MAX_TABLE_ELEMENTS", "DEFAULT_MEMORY_BYTES", "DEFAULT_OPT_LEVEL", "EVENT_LEVELS",
    "GUEST_ERROR_KINDS", "HANDLER_EXPORT", "STREAM_LEVELS",
    # errors
    "ArtifactError", "ComponentError", "EngineConfigError", "EngineError", "GuestError", "GuestErrorKind",
    "TickerError",
    # engine, linker, invoke
    "EngineConfig", "WasmEngine", "Capability", "build_linker", "invoke", "classify_failure",
    "detect_wasip2_version", "OutputCapture", "CallState", "bind_call", "current_call",
    # values
    "GuestRequest", "GuestResponse", "build_execute_request", "parse_execute_response", "fast_bytes_installed",
    "install_fast_bytes", "stock_bytes_conversion",
    # host-function glue
    "Err", "Ok", "LinkerInstanceBuilder", "call_backend", "host_function", "mapping_to_record",
    "record_to_mapping", "stash_host_exception", "take_host_exception", "wit_record",
    # the invocation
    "EventLevel", "EventSink", "EventStream", "HostScope", "HostUser", "Invocation", "InvocationContext",
    "InvocationCounters", "ScopeUsage", "SecretsProvider", "UserInfo", "bind_invocation", "current_invocation",
    # the invocation journal
    "LIVE_FUNCTIONS", "CallJournal", "CallRecorder", "CallReplayer", "ReplayDivergence", "decode_value",
    "encode_value", "redact", "secret_placeholder",
}  # fmt: skip


def test_engine_public_names_are_pinned() -> None:
    assert set(engine.__all__) == ENGINE_NAMES
    assert len(engine.__all__) == len(ENGINE_NAMES)


def imported_modules(tree: ast.Module, package: str) -> list[str]:
    """Absolute names of every module an AST imports (``from x import y`` also yields ``x.y``: y may be a module).

    Args:
        tree: the parsed module.
        package: the package the module lives in (what a relative import is relative to).
    """
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append(base)
            found.extend(f"{base}.{alias.name}" for alias in node.names)
    return found


def reaches(name: str, target: str) -> bool:
    return name == target or name.startswith(target + ".")


def test_the_check_sees_every_import_form() -> None:
    source = """
import runner_trio.capabilities
from runner_trio.capabilities.storage import x
from ..capabilities import y
from .. import capabilities
def late():
    from ..capabilities._unit import z
"""
    names = imported_modules(ast.parse(source), "runner_trio.engine")
    assert sum(reaches(name, FORBIDDEN) for name in names) >= 5
    harmless = imported_modules(ast.parse("from ._host import Ok\nfrom .. import _config"), "runner_trio.engine")
    assert not any(reaches(name, FORBIDDEN) for name in harmless)


def test_no_engine_module_imports_the_capabilities() -> None:
    files = sorted(ENGINE_DIR.rglob("*.py"))
    assert len(files) >= 10
    offenders = []
    for path in files:
        relative = path.relative_to(ENGINE_DIR.parent.parent).with_suffix("")
        parts = list(relative.parts)
        package = ".".join(parts if parts[-1] == "__init__" else parts[:-1]).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders.extend(
            f"{path.name}: {name}" for name in imported_modules(tree, package) if reaches(name, FORBIDDEN)
        )
    assert offenders == []
