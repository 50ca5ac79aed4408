"""``GET /ext-ui/{extensionId}/{contentHash}/~t/{token}/{path...}``: a bundle's ``ui/`` files, served from the
verified cache to the holders of a URL the gateway signed.

What a request goes through, in order:

1. the raw (still percent-encoded) target is split here, not by the router, because Quart decodes ``%2F`` and
   ``%2e`` before routing; the extension id and the hash must be well formed (else 404) and the path must pass
   :func:`safe_relative_path` (else 400), so nothing encoded can name a file outside ``ui/``;
2. the signed URL (``EXT_UI_SIGNING_KEY`` set): the token after ``~t/`` must be one the gateway issued for this
   (extension, hash), unexpired (:class:`contract.UiUrlSigner`); it names the tenant, checked here with no call
   to the gateway. A missing, expired or foreign token is the same 404, body and headers, as a hash that does
   not exist, so the route tells nobody which installs exist. Without a key, strict mode
   (``EXT_STATIC_STRICT_VALIDATION``, on by default) serves nothing here, and with strict mode off (development
   only) any published bundle is served to anyone;
3. the bundle's cache entry is pinned (fetched once, hash- and signature-checked by ``BundleService``); a
   bundle that fails the signature policy is never served;
4. the path is looked up in the entry's index only (never on the disk by name), with the SPA fallback to
   ``index.html``; the file is verified against its sha256 and opened while the entry is pinned, and the
   open descriptor then keeps those bytes readable even if the entry is evicted mid-stream.

Answers carry a strong ETag (the file's sha256), ``Cache-Control: immutable`` (a content hash never changes),
``nosniff``, a CSP on HTML (with ``sandbox`` and no ``allow-same-origin``: a page opened top-level on the shared
origin runs in an opaque origin), and honour ``If-None-Match`` (304), ``HEAD`` and single ``Range`` requests.
Isolated origins (``EXT_UI_ORIGIN_TEMPLATE``) are dispatched by host instead; see :func:`create_ui_blueprint`.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import BinaryIO, Final

import trio
from quart import Blueprint, Response, request
from werkzeug.datastructures import ContentRange
from werkzeug.http import parse_if_range_header, quote_etag

from bundles import ArchiveError, IntegrityError, ManifestError, ObjectNotFound, SignatureError
from cache import CacheCorrupted, CacheError, FileInfo
from contract import SAFE_ID_PATTERN, ContentHashError, UiUrlSigner, split_ui_token

from ._bundles import UI_DIR, BundleService
from ._config import Settings
from ._errors import BundleUnavailable
from ._ui_paths import (
    IMMUTABLE_CACHE_CONTROL,
    REVALIDATE_CACHE_CONTROL,
    SHARED_ORIGIN_SANDBOX,
    ByteRange,
    UnsafePath,
    build_csp,
    content_type_for,
    parse_range,
    parse_ui_content_hash,
    safe_relative_path,
)
from ._ui_validator import InstallValidator

__all__ = ["BLUEPRINT_NAME", "InstallValidator", "create_ui_blueprint"]

log = logging.getLogger(__name__)

BLUEPRINT_NAME: Final = "runner_ui"
DEFAULT_MAX_ASSET_BYTES: Final = 64 * 1024 * 1024
"""Largest single UI file served (413 above it)."""
DEFAULT_CHUNK_BYTES: Final = 64 * 1024
"""Bodies up to this size are read in one go; larger ones are streamed in chunks of this size."""
INDEX_FILE: Final = "index.html"

_ID_RE: Final = SAFE_ID_PATTERN
_METHODS: Final = ["GET", "HEAD"]
SHARED_ORIGIN_CORS: Final = {"access-control-allow-origin": "*"}
"""On the shared origin's answers: an opaque-origin frame (sandbox without allow-same-origin) loads module
scripts in CORS mode with ``Origin: null``. Nothing is lost: the files carry no credential and need none."""


# -- the route ----------------------------------------------------------------------------------------------------


def create_ui_blueprint(
    *,
    bundles: BundleService,
    settings: Settings,
    validator: InstallValidator | None,
    max_asset_bytes: int = DEFAULT_MAX_ASSET_BYTES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Blueprint:
    """The ``/ext-ui`` blueprint (named :data:`BLUEPRINT_NAME`).

    Args:
        bundles: where verified, pinned cache entries come from.
        settings: ``ui_signing_key``, ``ui_strict_validation``, ``ui_frame_ancestors``,
            ``ui_content_security_policy``, ``ui_origin_template``.
        validator: maps an isolated origin to its install's hash (asked of the gateway), so without it isolated
            origins serve nothing; the path route never asks it. The blueprint closes it when the app stops
            serving.
        max_asset_bytes: largest file served (413 above).
        chunk_bytes: streaming chunk size.
    """
    blueprint = Blueprint(BLUEPRINT_NAME, __name__)
    isolated_csp = build_csp(override=settings.ui_content_security_policy,
                             frame_ancestors=settings.ui_frame_ancestors)
    shared_csp = build_csp(override=settings.ui_content_security_policy, frame_ancestors=settings.ui_frame_ancestors,
                           sandbox=SHARED_ORIGIN_SANDBOX)
    signer = UiUrlSigner(settings.ui_signing_key) if settings.ui_signing_key else None
    strict = settings.ui_strict_validation
    if signer is None and strict:
        log.warning("EXT_UI_SIGNING_KEY is unset and EXT_STATIC_STRICT_VALIDATION is on: /ext-ui/{ext}/{hash}/ "
                    "serves nothing (set the gateway's key here too)")
    template = settings.ui_origin_template
    if template is not None and validator is None:
        log.warning("EXT_UI_ORIGIN_TEMPLATE needs EXT_STATIC_STRICT_VALIDATION and REGISTRY_BASE_URL (the gateway "
                    "maps an origin to its install): isolated origins serve nothing")

    @blueprint.after_app_serving
    async def _close_validator() -> None:
        if validator is not None:
            await validator.aclose()

    # Without the trailing slash the router answers 308 to it, so relative URLs in index.html resolve. Slashes
    # are not merged: "//etc/passwd" after the hash must reach the path check (and be refused), not be redirected.
    @blueprint.route("/ext-ui/<ext_id>/<content_hash>/", methods=_METHODS, defaults={"rest": ""},
                     merge_slashes=False)
    @blueprint.route("/ext-ui/<ext_id>/<content_hash>/<path:rest>", methods=_METHODS, merge_slashes=False)
    async def ext_ui(ext_id: str, content_hash: str, rest: str) -> Response:
        target = _raw_target()
        if target is None:
            return _error(404, "not_found")
        extension, hex_digest, raw_rest = target
        token, raw_rest, slash = split_ui_token(raw_rest)
        tenant = None
        if signer is not None:
            tenant = signer.verify(token, extension=extension, hex_digest=hex_digest) if token else None
            if tenant is None:
                return _error(404, "not_found")  # the very answer of a hash that does not exist
        elif strict:
            return _error(404, "not_found")
        if not slash:
            # ".../~t/{token}" without its slash: relative URLs in index.html would lose the token.
            raw_path = (request.scope.get("raw_path") or request.path.encode("utf-8")).decode("latin-1")
            query = request.query_string.decode("latin-1")
            response = Response(b"", status=308)
            response.headers["location"] = f"{raw_path}/" + (f"?{query}" if query else "")
            return response
        try:
            clean = safe_relative_path(raw_rest)
        except UnsafePath as exc:
            return _error(400, "invalid_path", str(exc))
        # A tenant-scoped store key needs the tenant, which only a signed URL names: without one it is a 404.
        values = {"tenant": tenant, "extension": extension}
        key_context = {name: value for name in bundles.layout_fields if (value := values.get(name)) is not None}
        try:
            return await _serve(bundles, hex_digest, key_context, clean, shared_csp, max_asset_bytes, chunk_bytes,
                                SHARED_ORIGIN_CORS)
        except BundleUnavailable as exc:
            return _bundle_failure(hex_digest, exc)
        except ValueError:
            if len(key_context) == len(bundles.layout_fields):
                raise
            return _error(404, "not_found")

    if template is not None:

        @blueprint.before_app_request
        async def isolated_origin() -> Response | None:
            """Host-based dispatch: a request to an install's own origin is that install's UI, whatever the path.

            Registered on the app, ahead of routing: nothing else the runner serves (``/v1/*``, metrics) is
            reachable from an extension's origin.
            """
            found = template.match(request.host)
            if found is None:
                return None  # the runner's own origin: routes as usual
            tenant, extension = found
            if request.method not in _METHODS:
                response = _error(405, "method_not_allowed")
                response.headers["allow"] = ", ".join(_METHODS)
                return response
            raw_path = (request.scope.get("raw_path") or request.path.encode("utf-8")).decode("latin-1")
            try:
                clean = safe_relative_path(raw_path.removeprefix("/"))
            except UnsafePath as exc:
                return _error(400, "invalid_path", str(exc))
            hex_digest = await validator.active_hash(tenant, extension) if validator is not None else None
            if hex_digest is None:
                return _error(404, "not_found")
            values = {"tenant": tenant, "extension": extension}
            key_context = {name: values[name] for name in bundles.layout_fields if name in values}
            try:
                return await _serve(bundles, hex_digest, key_context, clean, isolated_csp, max_asset_bytes,
                                    chunk_bytes, {"cache-control": REVALIDATE_CACHE_CONTROL})
            except BundleUnavailable as exc:
                return _bundle_failure(hex_digest, exc)

    return blueprint


def _raw_target() -> tuple[str, str, str] | None:
    """(extension id, hex digest, raw path after the hash) from the undecoded request target, or None."""
    raw_path = request.scope.get("raw_path") or request.path.encode("utf-8")
    parts = raw_path.decode("latin-1").split("/", 4)  # ["", "ext-ui", "<ext>", "<hash>", "<rest>"]
    if len(parts) < 4 or parts[1] != "ext-ui":
        return None
    extension = urllib.parse.unquote(parts[2])  # undecodable bytes become U+FFFD, which the id pattern refuses
    try:
        hex_digest = parse_ui_content_hash(urllib.parse.unquote(parts[3]))
    except ContentHashError:
        return None
    if not _ID_RE.fullmatch(extension):
        return None
    return extension, hex_digest, parts[4] if len(parts) > 4 else ""


async def _serve(
    bundles: BundleService,
    hex_digest: str,
    key_context: Mapping[str, str],
    clean: str,
    csp: str,
    max_asset_bytes: int,
    chunk_bytes: int,
    extra_headers: Mapping[str, str],
) -> Response:
    for attempt in range(2):
        async with bundles.entry(hex_digest, key_context=key_context) as entry:
            relpath = resolve_ui_file(entry.files, clean)
            if relpath is None:
                return _error(404, "not_found")
            info = entry.files[relpath]
            if info.size > max_asset_bytes:
                return _error(413, "asset_too_large")
            tag = _etag(info)
            headers = {**_file_headers(relpath, info, tag, csp), **extra_headers}
            # If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/"x" matches "x"; * matches any.
            if request.if_none_match.contains_weak(tag):
                return Response(b"", status=304, headers={k: v for k, v in headers.items() if k != "content-type"})
            span = _range(info, tag)
            if span is False:
                unsatisfied = ContentRange("bytes", None, None, info.size)
                return Response(b"", status=416, headers={**headers, "content-range": unsatisfied.to_header()})
            status = 200
            start, length = 0, info.size
            if isinstance(span, ByteRange):
                status, start, length = 206, span.start, span.length
                headers["content-range"] = ContentRange("bytes", span.start, span.end + 1, info.size).to_header()
            if request.method == "HEAD":
                response = Response(b"", status=status, headers=headers)
                response.content_length = length
                return response
            try:
                path = await entry.verify(relpath)
                handle = await trio.to_thread.run_sync(_open_checked, path, info, hex_digest, relpath)
            except CacheCorrupted as exc:
                if attempt:
                    raise BundleUnavailable(f"cache_error: {exc}") from exc
                log.warning("ext-ui %s: %s; refetching", hex_digest, exc)
                continue
        # The entry is unpinned from here on; the descriptor keeps the verified bytes (eviction unlinks, never
        # rewrites in place), so a long download never holds the cache hostage.
        body = await _body(handle, start, length, chunk_bytes)
        response = Response(body, status=status, headers=headers)
        response.content_length = length
        return response
    raise AssertionError("unreachable")  # pragma: no cover


def resolve_ui_file(files: Mapping[str, FileInfo], clean: str) -> str | None:
    """The entry file answering the clean path ``clean``: itself, a directory's index, or the SPA fallback.

    - ``""`` -> ``ui/index.html``;
    - an existing file -> that file;
    - a directory -> its ``index.html``, else the root ``index.html``;
    - a missing path whose last segment has no extension (a client-side route) -> ``ui/index.html``;
    - anything else (a missing ``.js``, ``.png``…) -> None, so a broken asset link is a 404, not HTML.
    """
    root_index = f"{UI_DIR}/{INDEX_FILE}"
    if clean == "":
        return root_index if root_index in files else None
    candidate = f"{UI_DIR}/{clean}"
    if candidate in files:
        return candidate
    prefix = candidate + "/"
    if any(name.startswith(prefix) for name in files):
        own_index = prefix + INDEX_FILE
        if own_index in files:
            return own_index
        return root_index if root_index in files else None
    if "." not in clean.rsplit("/", 1)[-1]:
        return root_index if root_index in files else None
    return None


def _etag(info: FileInfo) -> str:
    """The file's entity tag, unquoted: its sha256 (a strong validator, the content never changes)."""
    return f"sha256-{info.sha256}"


def _file_headers(relpath: str, info: FileInfo, tag: str, csp: str) -> dict[str, str]:
    content_type = content_type_for(relpath)
    headers = {
        "content-type": content_type,
        "etag": quote_etag(tag),
        "cache-control": IMMUTABLE_CACHE_CONTROL,
        "x-content-type-options": "nosniff",
        "accept-ranges": "bytes",
    }
    if content_type.startswith("text/html"):
        headers["content-security-policy"] = csp
    return headers


def _range(info: FileInfo, tag: str) -> ByteRange | bool | None:
    header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if header is None or (if_range is not None and not _if_range_holds(if_range, tag)):
        return None  # If-Range names another version (or a date we cannot compare): send it all
    return parse_range(header, info.size)


def _if_range_holds(value: str, tag: str) -> bool:
    """If-Range uses the strong comparison (RFC 9110 §13.1.5): a weak tag or a date never holds."""
    value = value.strip()
    if value.startswith(("W/", "w/")):
        return False  # werkzeug's parser drops the weakness, so it is refused here first
    return parse_if_range_header(value).etag == tag


def _open_checked(path: os.PathLike[str] | str, info: FileInfo, hex_digest: str, relpath: str) -> BinaryIO:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the body that streams it
    except OSError:
        raise CacheCorrupted(hex_digest, relpath, "vanished between verification and open") from None
    if os.fstat(handle.fileno()).st_size != info.size:
        handle.close()
        raise CacheCorrupted(hex_digest, relpath, "changed between verification and open")
    return handle


async def _body(handle: BinaryIO, start: int, length: int, chunk_bytes: int) -> bytes | AsyncIterator[bytes]:
    if length <= chunk_bytes:
        try:
            return await trio.to_thread.run_sync(os.pread, handle.fileno(), length, start)
        finally:
            handle.close()
    return _stream(handle, start, length, chunk_bytes)


async def _stream(handle: BinaryIO, start: int, length: int, chunk_bytes: int) -> AsyncIterator[bytes]:
    # If the client goes away before the body starts, this generator never runs and the descriptor is closed
    # when the response is garbage-collected: no pin is held either way.
    try:
        position, remaining = start, length
        while remaining > 0:
            data = await trio.to_thread.run_sync(os.pread, handle.fileno(), min(chunk_bytes, remaining), position)
            if not data:
                return  # cannot happen for an unlinked-but-open file; the short body makes the server close
            position += len(data)
            remaining -= len(data)
            yield data
    finally:
        handle.close()


def _bundle_failure(hex_digest: str, exc: BundleUnavailable) -> Response:
    """The answer for a bundle that cannot be served, by what went wrong (the contract's codes)."""
    cause = exc.__cause__
    code = (exc.detail or "").split(":", 1)[0]
    if isinstance(cause, ObjectNotFound) or code == "not_found":
        return _error(404, "not_found")
    log.warning("ext-ui sha256:%s unavailable: %s", hex_digest, exc.detail)
    if isinstance(cause, SignatureError) or code == "signature_invalid":
        return _error(403, "signature_invalid")
    if isinstance(cause, IntegrityError) or code == "hash_mismatch":
        return _error(502, "archive_hash_mismatch")
    if isinstance(cause, ArchiveError | ManifestError | CacheError) or code.startswith(("invalid_", "cache_")):
        return _error(500, "extract_failed")
    return _error(502, "bundle_fetch_failed")


def _error(status: int, code: str, message: str | None = None) -> Response:
    body: dict[str, str] = {"code": code}
    if message:
        body["message"] = message
    return Response(
        json.dumps(body),
        status=status,
        content_type="application/json",
        headers={"x-content-type-options": "nosniff", "cache-control": "no-store"},
    )
