"""The manifest schema (``manifest.json``): parsing, validation and endpoint matching.

Validation is strict on purpose: an unknown key anywhere is an error (a typo like ``capabilites`` must not
silently grant nothing), and every error is a :class:`ManifestError` whose ``path`` names the field
(``api.endpoints[1].method``) so that an author can fix it without guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from ._errors import ManifestError

__all__ = [
    "ALWAYS_GRANTED",
    "DEFAULT_ENTRY_CANDIDATES",
    "HTTP_METHODS",
    "KNOWN_CAPABILITIES",
    "Endpoint",
    "Manifest",
    "UiHooks",
    "UiSpec",
    "parse_manifest",
]

KNOWN_CAPABILITIES: Final[frozenset[str]] = frozenset(
    {
        "cap:context.read",
        "cap:secrets.get",
        "cap:http.fetch",
        "cap:storage.kv",
        "cap:log.emit",
        "cap:ui.proxy",
        "cap:user.read",
        "cap:scheduler.manage",
        "cap:invoice.manual.create",
        "cap:client.read",
        "cap:service.read",
    }
)
ALWAYS_GRANTED: Final[frozenset[str]] = frozenset({"cap:context.read", "cap:log.emit", "cap:user.read"})
HTTP_METHODS: Final[frozenset[str]] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
#: Where the component lives when the manifest has no ``entry``, in order of preference.
DEFAULT_ENTRY_CANDIDATES: Final[tuple[str, ...]] = ("dist/main.wasm", "entry.wasm")

_TOP_LEVEL_KEYS: Final = frozenset(
    {"name", "publisher", "version", "runtime", "capabilities", "ui", "api", "assets", "precompiled", "entry"}
)
_MAX_TEXT: Final = 256
_NUM = r"(?:0|[1-9][0-9]*)"
_IDENT = r"(?:[0-9A-Za-z-]+)"
_SEMVER_RE: Final = re.compile(
    rf"{_NUM}\.{_NUM}\.{_NUM}(?:-{_IDENT}(?:\.{_IDENT})*)?(?:\+{_IDENT}(?:\.{_IDENT})*)?"
)
_WILDCARD_VERSION_RE: Final = re.compile(rf"{_NUM}\.{_NUM}\.\*")
_RUNTIME_RE: Final = re.compile(r"[a-z][a-z0-9-]*@[0-9]+")
_PARAM_RE: Final = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")
_TARGET_RE: Final = re.compile(r"[A-Za-z0-9_.-]+")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_BAD_SEGMENT_CHARS: Final = re.compile(r"[\s?#\\\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Endpoint:
    """One ``api.endpoints`` entry: ``method`` and ``path`` (segments, ``:param`` matches any one)."""

    method: str
    path: str
    handler: str
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", _split_path(self.path))

    def matches(self, method: str, path: str) -> bool:
        """True if ``method`` is exactly this endpoint's and ``path`` has the same segments (params match one)."""
        if method != self.method:
            return False
        request = _split_path(path)
        if len(request) != len(self.segments):
            return False
        return all(
            (mine.startswith(":") and theirs != "") or mine == theirs
            for mine, theirs in zip(self.segments, request, strict=True)
        )

    def _specificity(self) -> tuple[int, ...]:
        # Literal segments beat params, left to right: "/x/new" wins over "/x/:id" for "/x/new".
        return tuple(1 if s.startswith(":") else 0 for s in self.segments)


@dataclass(frozen=True)
class UiHooks:
    """Host menu hooks of the iframe UI."""

    app_menu_label: str | None = None
    client_portal_menu_label: str | None = None


@dataclass(frozen=True)
class UiSpec:
    """The ``ui`` block: an iframe UI served from the bundle."""

    entry: str
    hooks: UiHooks | None = None
    type: str = "iframe"


@dataclass(frozen=True)
class Manifest:
    """A validated ``manifest.json``; capability names are normalized (trimmed, lower-cased, deduplicated)."""

    name: str
    version: str
    publisher: str | None = None
    runtime: str | None = None
    entry: str | None = None
    capabilities: tuple[str, ...] = ()
    ui: UiSpec | None = None
    endpoints: tuple[Endpoint, ...] | None = None
    assets: tuple[str, ...] | None = None
    precompiled: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def match_endpoint(self, method: str, path: str) -> Endpoint | None:
        """Return the endpoint that serves ``method path``, or None.

        ``path`` is the part after ``/api/ext/{extensionId}`` without the query string; a missing leading
        slash is tolerated. The method must match exactly; the segment count must be equal; a ``:param``
        segment matches any one non-empty segment. When several endpoints match, the one with literal
        segments further left wins.
        """
        found = [ep for ep in self.endpoints or () if ep.matches(method, path)]
        return min(found, key=Endpoint._specificity) if found else None

    def to_dict(self) -> dict[str, Any]:
        """The normalized manifest as JSON-ready data, using the manifest's own key names."""
        out: dict[str, Any] = {"name": self.name}
        if self.publisher is not None:
            out["publisher"] = self.publisher
        out["version"] = self.version
        if self.runtime is not None:
            out["runtime"] = self.runtime
        if self.entry is not None:
            out["entry"] = self.entry
        out["capabilities"] = list(self.capabilities)
        if self.ui is not None:
            ui: dict[str, Any] = {"type": self.ui.type, "entry": self.ui.entry}
            if self.ui.hooks is not None:
                hooks: dict[str, Any] = {}
                if self.ui.hooks.app_menu_label is not None:
                    hooks["appMenu"] = {"label": self.ui.hooks.app_menu_label}
                if self.ui.hooks.client_portal_menu_label is not None:
                    hooks["clientPortalMenu"] = {"label": self.ui.hooks.client_portal_menu_label}
                ui["hooks"] = hooks
            out["ui"] = ui
        if self.endpoints is not None:
            out["api"] = {
                "endpoints": [{"method": e.method, "path": e.path, "handler": e.handler} for e in self.endpoints]
            }
        if self.assets is not None:
            out["assets"] = list(self.assets)
        if self.precompiled:
            out["precompiled"] = dict(self.precompiled)
        return out

    def to_json(self) -> str:
        """The normalized manifest as JSON text (stable key order, two-space indent)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def parse_manifest(raw: bytes | str | Mapping[str, Any]) -> Manifest:
    """Parse and validate a manifest.

    Args:
        raw: the ``manifest.json`` bytes (UTF-8), its text, or already-decoded JSON data.

    Raises:
        ManifestError: not JSON, not an object, a duplicate or unknown key, or a field that breaks the
            schema; ``.path`` names the field.
    """
    if isinstance(raw, Mapping):
        data: Any = raw
    else:
        if isinstance(raw, bytes | bytearray | memoryview):
            try:
                text = bytes(raw).decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ManifestError("", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
        else:
            text = raw
        try:
            data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ManifestError("", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        except RecursionError:
            raise ManifestError("", "JSON nested too deeply") from None
    obj = _mapping(data, "")
    _check_keys(obj, _TOP_LEVEL_KEYS, "")
    capabilities = _capabilities(obj.get("capabilities"))
    return Manifest(
        name=_text(_required(obj, "name", ""), "name"),
        version=_version(_required(obj, "version", "")),
        publisher=None if obj.get("publisher") is None else _text(obj["publisher"], "publisher"),
        runtime=None if obj.get("runtime") is None else _runtime(obj["runtime"]),
        entry=None if obj.get("entry") is None else _relative_path(obj["entry"], "entry"),
        capabilities=capabilities,
        ui=None if obj.get("ui") is None else _ui(obj["ui"]),
        endpoints=None if obj.get("api") is None else _api(obj["api"]),
        assets=None if obj.get("assets") is None else _assets(obj["assets"]),
        precompiled=MappingProxyType(_precompiled(obj.get("precompiled"))),
    )


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(key, "duplicate key")
        out[key] = value
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ManifestError(path, f"must be an object, not {_kind(value)}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise ManifestError(path, f"must be an array, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "an array" if isinstance(value, list | tuple) else "an object"
    )


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise ManifestError(_join(path, unknown[0]), f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if obj.get(key) is None:
        raise ManifestError(_join(path, key), "is required")
    return obj[key]


def _text(value: Any, path: str, *, max_len: int = _MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise ManifestError(path, f"must be a string, not {_kind(value)}")
    if not value.strip():
        raise ManifestError(path, "must not be empty")
    if len(value) > max_len:
        raise ManifestError(path, f"longer than {max_len} characters")
    if _CONTROL_RE.search(value):
        raise ManifestError(path, "contains control characters")
    return value


def _version(value: Any) -> str:
    text = _text(value, "version")
    if not (_SEMVER_RE.fullmatch(text) or _WILDCARD_VERSION_RE.fullmatch(text)):
        raise ManifestError("version", f"{text!r} is not a semantic version (1.2.3) nor X.Y.*")
    return text


def _runtime(value: Any) -> str:
    text = _text(value, "runtime")
    if not _RUNTIME_RE.fullmatch(text):
        raise ManifestError("runtime", f"{text!r} is not of the form name@major (e.g. wasm-js@1)")
    return text


def _capabilities(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    out: dict[str, None] = {}
    for i, item in enumerate(_list(value, "capabilities")):
        path = f"capabilities[{i}]"
        if not isinstance(item, str):
            raise ManifestError(path, f"must be a string, not {_kind(item)}")
        name = item.strip().lower()
        if name not in KNOWN_CAPABILITIES:
            raise ManifestError(path, f"unknown capability {item!r}")
        out[name] = None
    return tuple(out)


def _relative_path(value: Any, path: str, *, glob: bool = False) -> str:
    """A path inside the bundle: relative, forward slashes, no ``.``/``..``/empty segments."""
    text = _text(value, path, max_len=1024)
    while text.startswith("./"):
        text = text[2:]
    if text.startswith("/"):
        raise ManifestError(path, f"{value!r} must be relative to the bundle root")
    if "\\" in text:
        raise ManifestError(path, f"{value!r} must use forward slashes")
    for segment in text.split("/"):
        if segment in ("", ".", ".."):
            raise ManifestError(path, f"{value!r} has an empty, '.' or '..' segment")
    if not glob and any(c in text for c in "*?["):
        raise ManifestError(path, f"{value!r} must be a plain path, not a glob")
    return text


def _ui(value: Any) -> UiSpec:
    obj = _mapping(value, "ui")
    _check_keys(obj, frozenset({"type", "entry", "hooks"}), "ui")
    kind = _required(obj, "type", "ui")
    if kind != "iframe":
        raise ManifestError("ui.type", f"must be 'iframe', not {kind!r}")
    entry = _relative_path(_required(obj, "entry", "ui"), "ui.entry")
    hooks = None
    if obj.get("hooks") is not None:
        raw_hooks = _mapping(obj["hooks"], "ui.hooks")
        _check_keys(raw_hooks, frozenset({"appMenu", "clientPortalMenu"}), "ui.hooks")
        labels: dict[str, str | None] = {}
        for key in ("appMenu", "clientPortalMenu"):
            labels[key] = None
            if raw_hooks.get(key) is not None:
                hook = _mapping(raw_hooks[key], f"ui.hooks.{key}")
                _check_keys(hook, frozenset({"label"}), f"ui.hooks.{key}")
                labels[key] = _text(_required(hook, "label", f"ui.hooks.{key}"), f"ui.hooks.{key}.label")
        hooks = UiHooks(app_menu_label=labels["appMenu"], client_portal_menu_label=labels["clientPortalMenu"])
    return UiSpec(entry=entry, hooks=hooks)


def _api(value: Any) -> tuple[Endpoint, ...]:
    obj = _mapping(value, "api")
    _check_keys(obj, frozenset({"endpoints"}), "api")
    endpoints: list[Endpoint] = []
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    for i, item in enumerate(_list(_required(obj, "endpoints", "api"), "api.endpoints")):
        path = f"api.endpoints[{i}]"
        ep_obj = _mapping(item, path)
        _check_keys(ep_obj, frozenset({"method", "path", "handler"}), path)
        method = _text(_required(ep_obj, "method", path), f"{path}.method")
        if method.upper() not in HTTP_METHODS:
            raise ManifestError(f"{path}.method", f"{method!r} is not one of {', '.join(sorted(HTTP_METHODS))}")
        endpoint = Endpoint(
            method=method.upper(),
            path=_endpoint_path(_required(ep_obj, "path", path), f"{path}.path"),
            handler=_text(_required(ep_obj, "handler", path), f"{path}.handler"),
        )
        shape = (endpoint.method, tuple(":" if s.startswith(":") else s for s in endpoint.segments))
        if shape in seen:
            raise ManifestError(path, f"{endpoint.method} {endpoint.path} duplicates api.endpoints[{seen[shape]}]")
        seen[shape] = i
        endpoints.append(endpoint)
    return tuple(endpoints)


def _split_path(path: str) -> tuple[str, ...]:
    trimmed = path[1:] if path.startswith("/") else path
    return tuple(trimmed.split("/")) if trimmed else ()


def _endpoint_path(value: Any, path: str) -> str:
    text = _text(value, path, max_len=1024)
    if not text.startswith("/"):
        raise ManifestError(path, f"{text!r} must start with '/'")
    params: set[str] = set()
    for segment in _split_path(text):
        if segment in ("", ".", ".."):
            raise ManifestError(path, f"{text!r} has an empty, '.' or '..' segment")
        if _BAD_SEGMENT_CHARS.search(segment):
            raise ManifestError(path, f"{text!r}: segment {segment!r} has a space, '?', '#' or backslash")
        if segment.startswith(":"):
            if not _PARAM_RE.fullmatch(segment):
                raise ManifestError(path, f"{text!r}: {segment!r} is not a valid :param name")
            if segment in params:
                raise ManifestError(path, f"{text!r}: parameter {segment!r} appears twice")
            params.add(segment)
        elif ":" in segment:
            raise ManifestError(path, f"{text!r}: ':' may only start a whole :param segment")
    return text


def _assets(value: Any) -> tuple[str, ...]:
    return tuple(
        _relative_path(item, f"assets[{i}]", glob=True) for i, item in enumerate(_list(value, "assets"))
    )


def _precompiled(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    obj = _mapping(value, "precompiled")
    out: dict[str, str] = {}
    for target, item in obj.items():
        path = f"precompiled.{target}"
        if not isinstance(target, str) or not _TARGET_RE.fullmatch(target):
            raise ManifestError(path, "target must be letters, digits, '_', '.' or '-'")
        out[target] = _relative_path(item, path)
    return out
