"""``servicekit``'s access logger: the lines Hypercorn's own ``AccessLogAtoms`` gives, computed lazily."""

from __future__ import annotations

from typing import Any

import pytest
from hypercorn.config import Config
from hypercorn.logging import AccessLogAtoms

from servicekit._accesslog import AccessLogger

_SCOPE: dict[str, Any] = {
    "type": "http", "http_version": "1.1", "method": "POST", "path": "/api/ext/hello/hi", "query_string": b"a=1&b=2",
    "headers": [(b"host", b"gw"), (b"User-Agent", b"curl/8"), (b"referer", b"http://a/"), (b"x-dup", b"1"),
                (b"X-Dup", b"2")],
    "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 80), "scheme": "http", "root_path": "",
}
_RESPONSE: dict[str, Any] = {"type": "http.response.start", "status": 418,
                             "headers": [(b"content-type", b"application/json"), (b"Content-Length", b"40")]}
_FORMATS = [
    Config.access_log_format,
    "%(R)s|%(st)s|%(S)s|%(m)s|%(U)s|%(Uq)s|%(q)s|%(H)s|%(B)s|%(T)s|%(D)s|%(L)s|%(p)s",
    "%({content-type}o)s|%({HOST}i)s|%({x-dup}i)s|%({path}e)s|%({absent}i)s|%({absent}o)s|%({absent}e)s|%(zz)s",
]


@pytest.mark.parametrize("fmt", _FORMATS)
@pytest.mark.parametrize("response", [_RESPONSE, None])
@pytest.mark.parametrize("client", [("127.0.0.1", 5555), ("unix-socket",), None])
def test_lines_are_hypercorns(fmt: str, response: dict[str, Any] | None, client: tuple[Any, ...] | None,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setattr("time.strftime", lambda _fmt: "[06/Dec/2026:10:00:00 +0000]")  # one instant for both
    scope = {**_SCOPE, "client": client}
    config = Config()
    config.accesslog = None
    ours = AccessLogger(config).atoms(scope, response, 0.0123)  # type: ignore[arg-type]
    theirs = AccessLogAtoms(scope, response, 0.0123)  # type: ignore[arg-type]
    assert fmt % ours == fmt % theirs
