"""The host page ``/msp/extensions/{extensionId}`` and the bridge's static files under ``/static/``.

The page embeds the caller's tenant's active install of an extension in a sandboxed iframe, in one of two modes
(``docs/ui.md``):

- **isolated** (``EXT_UI_ORIGIN_TEMPLATE`` set, the production mode): the install's UI on its own origin
  (``https://{extension}--{tenant}.ext-ui.example``), framed with ``allow-scripts allow-same-origin allow-forms
  allow-popups``: the frame is same-origin only with itself, so origin checks work both ways and the reference
  iframe SDK's protocol (no channel id, ``?parentOrigin=``) is spoken as is;
- **shared** (no template): every UI under the runner's one public origin (``RUNNER_PUBLIC_BASE``), framed with
  ``allow-scripts`` only (an opaque origin), where only messages carrying the embedding's channel id count. The
  frame URL is signed (:func:`ui_token`: ``/ext-ui/{ext}/{hash}/~t/{token}/index.html``), so a runner serves it
  to this tenant's page only, and for ``GATEWAY_UI_URL_TTL_S``.

Either way the frame talks to the page only through the postMessage bridge (``static/ext-bridge.js``). The page
carries no inline script: what its module needs arrives in a JSON data block, so its CSP can forbid inline
code outright and allow frames from the one origin in use only.

``/static/`` serves the files of the ``static`` directory next to this module by exact name (a fixed table
built at import), so no request path ever reaches the file system.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Final

from quart import Blueprint, Response, request

from contract import UiUrlSigner

from ._auth import PERMISSION_READ, authenticate
from ._errors import NotFound
from ._state import state
from ._validation import ID_PATTERN

__all__ = ["API_PROXY_PREFIX", "DARK_THEME_TOKENS", "DEFAULT_THEME_TOKENS", "ISOLATED_SANDBOX", "STATIC_DIR",
           "blueprint", "ui_token"]

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
API_PROXY_PREFIX: Final = "/api/ext"
"""Where the bridge sends an iframe's ``apiproxy`` calls: ``{prefix}/{extensionId}{route}``. The reference's host
uses ``/api/ext-proxy``; both answer the same once the gateway serves it."""
ISOLATED_SANDBOX: Final = "allow-scripts allow-same-origin allow-forms allow-popups"
"""The sandbox of a frame on its install's own origin (the reference's production host uses the same)."""
MAX_NAVIGATION_PATH: Final = 1024

DEFAULT_THEME_TOKENS: Final[Mapping[str, str]] = {
    "--alga-color-bg": "#f6f7fb",
    "--alga-color-surface": "#ffffff",
    "--alga-color-text": "#172033",
    "--alga-color-muted": "#5b6478",
    "--alga-color-primary": "#5b3fd6",
    "--alga-color-primary-contrast": "#ffffff",
    "--alga-color-border": "#dfe3ec",
    "--alga-radius": "8px",
    "--alga-spacing": "8px",
    "--alga-font-family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "--alga-font-size": "14px",
    # The names UIs built on the reference iframe SDK read (its host sends these).
    "--alga-primary": "#5b3fd6",
    "--alga-primary-foreground": "#ffffff",
    "--alga-secondary": "#eef0f6",
    "--alga-accent": "#0e9f8e",
    "--alga-danger": "#c8324b",
    "--alga-success": "#1f8a4c",
    "--alga-warning": "#b7791f",
    "--alga-bg": "#f6f7fb",
    "--alga-card-bg": "#ffffff",
    "--alga-fg": "#172033",
    "--alga-muted": "#eef0f6",
    "--alga-muted-fg": "#5b6478",
    "--alga-border": "#dfe3ec",
}
"""The platform's theme, as CSS custom properties: applied to the host page and sent to the iframe."""

DARK_THEME_TOKENS: Final[Mapping[str, str]] = {
    **DEFAULT_THEME_TOKENS,
    "--alga-color-bg": "#11141c",
    "--alga-color-surface": "#1b2030",
    "--alga-color-text": "#e8ebf3",
    "--alga-color-muted": "#9aa3b8",
    "--alga-color-primary": "#9d8cff",
    "--alga-color-primary-contrast": "#11141c",
    "--alga-color-border": "#2c3347",
    "--alga-primary": "#9d8cff",
    "--alga-primary-foreground": "#11141c",
    "--alga-secondary": "#252b3d",
    "--alga-bg": "#11141c",
    "--alga-card-bg": "#1b2030",
    "--alga-fg": "#e8ebf3",
    "--alga-muted": "#252b3d",
    "--alga-muted-fg": "#9aa3b8",
    "--alga-border": "#2c3347",
}

_STATIC_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class _StaticFile:
    data: bytes
    content_type: str
    etag: str


def _load_static(directory: Path) -> dict[str, _StaticFile]:
    files: dict[str, _StaticFile] = {}
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if path.is_file() and path.suffix in _STATIC_TYPES:
            data = path.read_bytes()
            files[path.name] = _StaticFile(data, _STATIC_TYPES[path.suffix],
                                           f'"sha256-{hashlib.sha256(data).hexdigest()}"')
    return files


# Read once at import: a few KiB of package data, served by exact name.
_STATIC_FILES: Final[Mapping[str, _StaticFile]] = _load_static(STATIC_DIR)

blueprint = Blueprint("host_page", __name__)


@blueprint.get("/msp/extensions/<ext_id>")
async def host_page(ext_id: str) -> Response:
    """The page embedding ``ext_id``'s UI for the caller's tenant; 404 without an active install with a UI."""
    st = state()
    principal = await authenticate(st.registry, st.signer, request.headers, request.cookies)
    principal.require(PERMISSION_READ)
    install = None
    if ID_PATTERN.fullmatch(ext_id):
        install = await st.registry.find_active_install(principal.tenant_id, ext_id)
    if install is None:
        raise NotFound("not_installed", "the extension is not installed for this tenant")
    manifest = st.manifests.get(install.version)
    if manifest.ui is None:
        raise NotFound("no_ui", "the extension has no UI")
    runner_base = st.settings.public_runner_base
    runner = urllib.parse.urlsplit(runner_base)
    runner_origin = f"{runner.scheme}://{runner.netloc}"
    template = st.settings.ui_origin_template
    # An id that cannot be a host label gets no origin of its own: that install stays on the shared origin.
    ui_origin = template.origin_for(install.tenant_id, install.extension_id) if template is not None else None
    user = principal.user
    config: dict[str, Any] = {
        "extensionId": install.extension_id,
        "extensionName": manifest.name,
        "version": install.version.version,
        "contentHash": f"sha256:{install.version.content_hash}",
        "tenantId": install.tenant_id,
        "runnerBase": runner_base,
        "entry": manifest.ui.entry.removeprefix("ui/") if manifest.ui.entry.startswith("ui/") else "index.html",
        "apiBase": f"{API_PROXY_PREFIX}/{install.extension_id}",
        "uiMode": "isolated" if ui_origin else "shared",
        # The shared origin's frame URL carries the gateway's signature (None without EXT_UI_SIGNING_KEY).
        "uiToken": None if ui_origin else ui_token(install.tenant_id, install.extension_id,
                                                  install.version.content_hash),
        "uiOrigin": ui_origin,
        "sandbox": ISOLATED_SANDBOX if ui_origin else "allow-scripts",
        "navigationPath": _navigation_path(request.args.get("path")),
        # What the iframe may know about the caller. Never a credential, in either mode: the reference's
        # bootstrap also has session.token and session.expires_at, which the bridge sends as null.
        "session": {
            "tenant_id": install.tenant_id,
            "user_id": user.id,
            "user_name": user.name,
            "user_type": user.user_type,
            "extension_id": install.extension_id,
            "install_id": install.id,
        },
        "themes": {"light": dict(DEFAULT_THEME_TOKENS), "dark": dict(DARK_THEME_TOKENS)},
        "theme": "light",
    }
    response = Response(_render(config), content_type="text/html; charset=utf-8")
    response.headers["content-security-policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        f"frame-src {ui_origin or runner_origin}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    response.headers["cache-control"] = "no-store"
    response.headers["x-frame-options"] = "DENY"
    response.headers["referrer-policy"] = "no-referrer"
    return response


def ui_token(tenant: str, extension: str, hex_digest: str) -> str | None:
    """A token for ``/ext-ui/{extension}/sha256:{hex}/~t/{token}/``: ``tenant`` may load that UI for
    ``GATEWAY_UI_URL_TTL_S``; None when ``EXT_UI_SIGNING_KEY`` is unset."""
    settings = state().settings
    if settings.ui_signing_key is None:
        return None
    return UiUrlSigner(settings.ui_signing_key).issue(tenant=tenant, extension=extension, hex_digest=hex_digest,
                                                      ttl_s=settings.ui_url_ttl_s)


@blueprint.get("/static/<name>")
async def static_file(name: str) -> Response:
    """A file of the bridge (``ext-bridge.js``, ``ext-iframe.js``, the host page's script and style)."""
    found = _STATIC_FILES.get(name)
    if found is None:
        raise NotFound("not_found", "no such static file")
    headers = {
        "content-type": found.content_type,
        "etag": found.etag,
        # Not content-addressed: revalidate each time (the ETag keeps that cheap).
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
    }
    if request.headers.get("if-none-match") == found.etag:
        return Response(b"", status=304, headers=headers)
    return Response(found.data, headers=headers)


def _navigation_path(raw: str | None) -> str:
    """The SPA route to open the iframe at (``?path=``): a clean absolute path, else ``/``."""
    if not raw or len(raw) > MAX_NAVIGATION_PATH or not raw.startswith("/") or raw.startswith("//"):
        return "/"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in raw):
        return "/"
    return raw


def _json_for_html(data: object) -> str:
    # Inside <script type="application/json"> only "</script" could end the block early; escaping every
    # '<', '>' and '&' (and the JS line separators) keeps any value inert.
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _render(config: Mapping[str, Any]) -> str:
    name = escape(str(config["extensionName"]))
    meta = escape(f"v{config['version']} · tenant {config['tenantId']}")
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{name} · Extensions</title>
  <link rel="stylesheet" href="/static/host-page.css">
  <script type="application/json" id="ext-host-config">{_json_for_html(config)}</script>
  <script type="module" src="/static/host-page.js"></script>
</head>
<body>
  <header class="host-header">
    <div>
      <h1 class="host-title">{name}</h1>
      <p class="host-meta">{meta}</p>
    </div>
    <button type="button" id="theme-toggle" class="host-button">Dark theme</button>
  </header>
  <main id="ext-host" class="host-main" data-bridge="loading" data-ignored="0" data-api-calls="0"></main>
  <footer class="host-footer">
    <span>Bridge: <output id="bridge-state">loading</output></span>
    <span>Route: <output id="nav-path">{escape(str(config["navigationPath"]))}</output></span>
  </footer>
</body>
</html>
"""
