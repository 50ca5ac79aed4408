"""The manifest schema (``manifest.json``): parsing, validation and endpoint matching.

The schema is the reference runner's, key for key (``docs/manifest.md`` lists them). Every key it knows is
validated strictly, and every error is a :class:`ManifestError` whose ``path`` names the field
(``api.endpoints[1].method``) so that an author can fix it without guessing.

A key outside the schema is accepted and ignored, as the reference accepts it, so that an extension built for
the reference runs here unchanged. It is not ignored silently: the parsed :class:`Manifest` names each one in
``warnings`` (``extctl pack`` and ``extctl verify`` print them), and ``parse_manifest(..., strict=True)``
(``extctl pack --strict``) refuses them, because a typo like ``capabilites`` would otherwise grant nothing
without a word. The free-form parts of the schema (``ui.hooks`` beyond the two menus, ``ui.routes``) are
carried as given, bounded in depth so that they can always be written back out.
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
    "EventSubscription",
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
    | {"sbom", "events"}
    | {"egress", "secrets"}  # declarations a tenant admin consents to (docs/operations.md); not the reference's
    | {"$schema"}  # where an editor finds the JSON Schema (bundles/manifest.schema.json); not used here
)
_UI_KEYS: Final = frozenset({"type", "entry", "hooks", "routes"})
_MENU_HOOKS: Final = ("appMenu", "clientPortalMenu")
_ENDPOINT_KEYS: Final = frozenset({"method", "path", "handler", "schedulable"})
_EVENT_KEYS: Final = frozenset({"topic", "handler"})
_MAX_TEXT: Final = 256
#: Free-form values (``ui.routes``, other ``ui.hooks``) deeper than this are refused: json.dumps recurses, and a
#: manifest that parses must also serialize (the gateway stores ``Manifest.to_json()``).
_MAX_FREE_FORM_DEPTH: Final = 32
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
_SURROGATE_RE: Final = re.compile(r"[\ud800-\udfff]")
_PLAIN_KEY_RE: Final = re.compile(r"[A-Za-z0-9_$@-]+")


@dataclass(frozen=True)
class Endpoint:
    """One ``api.endpoints`` entry: ``method`` and ``path`` (segments, ``:param`` matches any one).

    ``schedulable`` marks an endpoint the host's scheduler may call (the reference's ``endpoint-info``).
    """

    method: str
    path: str
    handler: str
    schedulable: bool = False
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
class EventSubscription:
    """One ``events`` entry: the handler the host calls for a topic."""

    topic: str
    handler: str


@dataclass(frozen=True)
class UiHooks:
    """Host integration hooks of the iframe UI: the two menus, and any other hook as given (free-form)."""

    app_menu_label: str | None = None
    client_portal_menu_label: str | None = None
    other: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True)
class UiSpec:
    """The ``ui`` block: an iframe UI served from the bundle; ``routes`` is free-form, as given (or None)."""

    entry: str
    hooks: UiHooks | None = None
    type: str = "iframe"
    routes: Any = field(default=None, hash=False)


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
    sbom: str | None = None
    events: tuple[EventSubscription, ...] | None = None
    #: Hosts the extension fetches from (``EXT_EGRESS_ALLOWLIST`` entries: ``host``, ``*.domain``, ``:port``),
    #: trimmed and lower-cased: what it asks for, shown to a tenant admin; the runner's allowlist still rules.
    egress: tuple[str, ...] | None = None
    #: Names of the secrets the extension reads; an upgrade that adds one needs the tenant admin's consent.
    secrets: tuple[str, ...] | None = None
    #: Paths of the keys outside the schema (accepted and ignored); not part of equality.
    unknown_fields: tuple[str, ...] = field(default=(), compare=False)

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per key outside the schema, naming its path (what ``extctl pack``/``verify`` print)."""
        return tuple(f"manifest {path}: unknown field, ignored" for path in self.unknown_fields)

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
                hooks.update(self.ui.hooks.other)
                ui["hooks"] = hooks
            if self.ui.routes is not None:
                ui["routes"] = self.ui.routes
            out["ui"] = ui
        if self.endpoints is not None:
            out["api"] = {"endpoints": [_endpoint_dict(e) for e in self.endpoints]}
        if self.events is not None:
            out["events"] = [{"topic": e.topic, "handler": e.handler} for e in self.events]
        if self.assets is not None:
            out["assets"] = list(self.assets)
        if self.precompiled:
            out["precompiled"] = dict(self.precompiled)
        if self.sbom is not None:
            out["sbom"] = self.sbom
        if self.egress is not None:
            out["egress"] = list(self.egress)
        if self.secrets is not None:
            out["secrets"] = list(self.secrets)
        return out

    def to_json(self) -> str:
        """The normalized manifest as JSON text (stable key order, two-space indent)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _endpoint_dict(endpoint: Endpoint) -> dict[str, Any]:
    out: dict[str, Any] = {"method": endpoint.method, "path": endpoint.path, "handler": endpoint.handler}
    if endpoint.schedulable:
        out["schedulable"] = True
    return out


def parse_manifest(raw: bytes | str | Mapping[str, Any] | object, *, strict: bool = False) -> Manifest:
    """Parse and validate a manifest.

    Args:
        raw: the ``manifest.json`` bytes (UTF-8), its text, or already-decoded JSON data (an object; any other
            JSON value is refused like any other manifest error).
        strict: refuse keys outside the schema instead of listing them in ``Manifest.warnings``.

    Raises:
        ManifestError: not JSON, not an object, a duplicate key, a field that breaks the schema, or (strict)
            a key outside it; ``.path`` names the (first) field.
    """
    data: Any = raw
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            raw = bytes(raw).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ManifestError("", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if isinstance(raw, str):
        try:
            data = json.loads(raw, object_pairs_hook=_reject_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ManifestError("", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        except RecursionError:
            raise ManifestError("", "JSON nested too deeply") from None
        except ValueError as exc:  # e.g. an integer beyond sys.get_int_max_str_digits()
            raise ManifestError("", f"not valid JSON: {exc}") from None
    unknown: list[str] = []
    obj = _mapping(data, "")
    _check_keys(obj, _TOP_LEVEL_KEYS, "", unknown)
    if obj.get("$schema") is not None and not isinstance(obj["$schema"], str):
        raise ManifestError("$schema", f"must be a string, not {_kind(obj['$schema'])}")
    capabilities = _capabilities(obj.get("capabilities"))
    manifest = Manifest(
        name=_text(_required(obj, "name", ""), "name"),
        version=_version(_required(obj, "version", "")),
        publisher=None if obj.get("publisher") is None else _text(obj["publisher"], "publisher"),
        runtime=None if obj.get("runtime") is None else _runtime(obj["runtime"]),
        entry=None if obj.get("entry") is None else _relative_path(obj["entry"], "entry"),
        capabilities=capabilities,
        ui=None if obj.get("ui") is None else _ui(obj["ui"], unknown),
        endpoints=None if obj.get("api") is None else _api(obj["api"], unknown),
        assets=None if obj.get("assets") is None else _assets(obj["assets"]),
        precompiled=MappingProxyType(_precompiled(obj.get("precompiled"))),
        sbom=None if obj.get("sbom") is None else _text(obj["sbom"], "sbom", max_len=1024),
        events=None if obj.get("events") is None else _events(obj["events"], unknown),
        egress=None if obj.get("egress") is None else _names(obj["egress"], "egress", lower=True),
        secrets=None if obj.get("secrets") is None else _names(obj["secrets"], "secrets", lower=False),
        unknown_fields=tuple(unknown),
    )
    if strict and unknown:
        many = "s" if len(unknown) > 1 else ""
        raise ManifestError(unknown[0], f"unknown field{many} refused in strict mode: {', '.join(unknown)}")
    return manifest


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(key, "duplicate key")
        out[key] = value
    return out


def _join(path: str, key: object) -> str:
    if not isinstance(key, str) or not _PLAIN_KEY_RE.fullmatch(key):
        # An unknown key can be anything: quoted and escaped, so a path is one printable, unambiguous line.
        return f"{path}[{json.dumps(str(key))}]"
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


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str], path: str, unknown: list[str]) -> None:
    """Note the path of each key of ``obj`` outside ``allowed`` (accepted and ignored, as the reference does)."""
    unknown.extend(_join(path, key) for key in obj if key not in allowed)


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
    if _SURROGATE_RE.search(value):
        raise ManifestError(path, "contains a lone surrogate (not valid Unicode)")
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


def _ui(value: Any, unknown: list[str]) -> UiSpec:
    obj = _mapping(value, "ui")
    _check_keys(obj, _UI_KEYS, "ui", unknown)
    kind = _required(obj, "type", "ui")
    if kind != "iframe":
        raise ManifestError("ui.type", f"must be 'iframe', not {kind!r}")
    entry = _relative_path(_required(obj, "entry", "ui"), "ui.entry")
    hooks = None if obj.get("hooks") is None else _hooks(obj["hooks"], unknown)
    routes = None if obj.get("routes") is None else _free_form(obj["routes"], "ui.routes")
    return UiSpec(entry=entry, hooks=hooks, routes=routes)


def _hooks(value: Any, unknown: list[str]) -> UiHooks:
    """The two menus are typed; any other hook is free-form in the reference, so it is carried as given."""
    raw_hooks = _mapping(value, "ui.hooks")
    labels: dict[str, str | None] = {}
    for key in _MENU_HOOKS:
        labels[key] = None
        if raw_hooks.get(key) is not None:
            hook = _mapping(raw_hooks[key], f"ui.hooks.{key}")
            _check_keys(hook, frozenset({"label"}), f"ui.hooks.{key}", unknown)
            labels[key] = _text(_required(hook, "label", f"ui.hooks.{key}"), f"ui.hooks.{key}.label")
    other = {
        _free_form_key(key, "ui.hooks"): _free_form(item, _join("ui.hooks", key))
        for key, item in raw_hooks.items()
        if key not in _MENU_HOOKS
    }
    return UiHooks(
        app_menu_label=labels["appMenu"],
        client_portal_menu_label=labels["clientPortalMenu"],
        other=MappingProxyType(other),
    )


def _free_form(value: Any, path: str, depth: int = 0) -> Any:
    """A copy of a free-form JSON value, refusing what could not be written back out as JSON text."""
    if depth > _MAX_FREE_FORM_DEPTH:
        raise ManifestError(path, f"nested more than {_MAX_FREE_FORM_DEPTH} levels deep")
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if _SURROGATE_RE.search(value):
            raise ManifestError(path, "contains a lone surrogate (not valid Unicode)")
        return value
    if isinstance(value, list | tuple):
        return [_free_form(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {
            _free_form_key(key, path): _free_form(item, _join(path, key), depth + 1) for key, item in value.items()
        }
    raise ManifestError(path, f"is not JSON data ({type(value).__name__})")


def _free_form_key(key: Any, path: str) -> str:
    if not isinstance(key, str):
        raise ManifestError(_join(path, key), "object keys must be strings")
    if _SURROGATE_RE.search(key):
        raise ManifestError(_join(path, key), "key contains a lone surrogate (not valid Unicode)")
    return key


def _api(value: Any, unknown: list[str]) -> tuple[Endpoint, ...]:
    obj = _mapping(value, "api")
    _check_keys(obj, frozenset({"endpoints"}), "api", unknown)
    endpoints: list[Endpoint] = []
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    for i, item in enumerate(_list(_required(obj, "endpoints", "api"), "api.endpoints")):
        path = f"api.endpoints[{i}]"
        ep_obj = _mapping(item, path)
        _check_keys(ep_obj, _ENDPOINT_KEYS, path, unknown)
        method = _text(_required(ep_obj, "method", path), f"{path}.method")
        if method.upper() not in HTTP_METHODS:
            raise ManifestError(f"{path}.method", f"{method!r} is not one of {', '.join(sorted(HTTP_METHODS))}")
        endpoint = Endpoint(
            method=method.upper(),
            path=_endpoint_path(_required(ep_obj, "path", path), f"{path}.path"),
            handler=_text(_required(ep_obj, "handler", path), f"{path}.handler"),
            schedulable=_bool(ep_obj.get("schedulable", False), f"{path}.schedulable"),
        )
        shape = (endpoint.method, tuple(":" if s.startswith(":") else s for s in endpoint.segments))
        if shape in seen:
            raise ManifestError(path, f"{endpoint.method} {endpoint.path} duplicates api.endpoints[{seen[shape]}]")
        seen[shape] = i
        endpoints.append(endpoint)
    return tuple(endpoints)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(path, f"must be a boolean, not {_kind(value)}")
    return value


def _events(value: Any, unknown: list[str]) -> tuple[EventSubscription, ...]:
    events: list[EventSubscription] = []
    for i, item in enumerate(_list(value, "events")):
        path = f"events[{i}]"
        obj = _mapping(item, path)
        _check_keys(obj, _EVENT_KEYS, path, unknown)
        events.append(
            EventSubscription(
                topic=_text(_required(obj, "topic", path), f"{path}.topic"),
                handler=_text(_required(obj, "handler", path), f"{path}.handler"),
            )
        )
    return tuple(events)


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


def _names(value: Any, path: str, *, lower: bool) -> tuple[str, ...]:
    """A list of texts, trimmed (and lower-cased when ``lower``), duplicates dropped, order kept."""
    out: dict[str, None] = {}
    for i, item in enumerate(_list(value, path)):
        text = _text(item, f"{path}[{i}]").strip()
        out[text.lower() if lower else text] = None
    return tuple(out)


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
