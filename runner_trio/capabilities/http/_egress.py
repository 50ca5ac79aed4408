"""The egress policy for guest ``http.fetch``: a pure grammar and matcher, no I/O.

``EXT_EGRESS_ALLOWLIST`` is a comma-separated list of entries:

==========================  ====================================================================================
``api.example.com``          exactly that host
``*.example.com``            any subdomain of ``example.com``, at any depth, **but not** ``example.com`` itself
                             (list both to allow both: least privilege, and no surprise from a bare name)
``api.example.com:8443``     that host on port 8443 only
``10.0.0.5`` ``[::1]:8080``  an IP literal (IPv6 in brackets when a port follows; bare ``::1`` is accepted)
==========================  ====================================================================================

Rules:

* **An empty list denies everything.** (The reference runner allowed every host; we do not.)
* An entry without a port allows only the default port of the URL's scheme (80 for http, 443 for https);
  an entry with a port allows that port only, for either scheme.
* Hosts compare case-insensitively after IDNA normalization (``Bücher.de`` == ``xn--bcher-kva.de``), and a
  trailing dot is ignored. Entries and URLs go through the same parser (httpx's), so both sides see one host.
* Only ``http`` and ``https`` URLs, without userinfo, are allowed.
* Names that look numeric but are not dotted quads (``127.1``, ``2130706433``) are refused as entries; as URL
  hosts they never match a name entry, and after DNS the fetcher refuses the loopback they resolve to.
* :meth:`EgressPolicy.names_address` answers whether an entry names an IP literal explicitly: the fetcher
  refuses loopback, private, link-local and other non-public addresses after DNS unless an entry names them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, final

import httpx

from .._errors import EgressEntryError

__all__ = [
    "DEFAULT_PORTS",
    "Decision",
    "EgressPolicy",
    "EgressRule",
    "IPAddress",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS: Final = {"http": 80, "https": 443}

# Reasons a Decision carries; the fetcher maps the first three to ``invalid-url`` and the rest to ``not-allowed``.
REASON_ALLOWED: Final = "allowed"
REASON_INVALID_URL: Final = "invalid-url"
REASON_SCHEME: Final = "scheme"
REASON_USERINFO: Final = "userinfo"
REASON_EMPTY: Final = "empty-allowlist"
REASON_HOST: Final = "host"
REASON_PORT: Final = "port"
URL_REASONS: Final = frozenset({REASON_INVALID_URL, REASON_SCHEME})

_LABEL: Final = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_MAX_HOST_CHARS: Final = 253


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of :meth:`EgressPolicy.allows`: ``allowed``, a short ``reason``, and the matching ``entry``."""

    allowed: bool
    reason: str
    entry: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One parsed entry. ``host`` is the ASCII host (the suffix after ``*.`` for wildcards)."""

    kind: Literal["host", "wildcard", "address"]
    host: str
    port: int | None
    entry: str
    address: IPAddress | None = None

    def matches_host(self, host: str) -> bool:
        if self.kind == "wildcard":
            return host.endswith("." + self.host)
        if self.kind == "address":
            address = _parse_address(host)
            return address is not None and _same_address(address, self.address)
        return host == self.host

    def matches_port(self, port: int, scheme: str | None) -> bool:
        if self.port is not None:
            return port == self.port
        if scheme is None:
            return port in DEFAULT_PORTS.values()
        return port == DEFAULT_PORTS.get(scheme)


@final
class EgressPolicy:
    """A parsed allowlist. Build it with :meth:`parse`; it is immutable and safe to share."""

    __slots__ = ("_rules",)

    def __init__(self, rules: Iterable[EgressRule] = ()) -> None:
        self._rules = tuple(rules)

    @classmethod
    def parse(cls, entries: Iterable[str] | str) -> EgressPolicy:
        """Parse allowlist entries (an iterable, or one comma-separated string). Blank entries are skipped.

        Raises:
            EgressEntryError: an entry is malformed; the message names it.
        """
        items = entries.split(",") if isinstance(entries, str) else list(entries)
        return cls(_parse_entry(item.strip()) for item in items if item.strip())

    @property
    def rules(self) -> tuple[EgressRule, ...]:
        return self._rules

    @property
    def denies_all(self) -> bool:
        return not self._rules

    def allows(self, url: str | httpx.URL) -> Decision:
        """Decide whether a guest may fetch ``url``. Pure: no DNS, no connection."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            return Decision(False, REASON_INVALID_URL)
        scheme = parsed.scheme
        if scheme not in DEFAULT_PORTS:
            return Decision(False, REASON_SCHEME)
        host = normalized_url_host(parsed)
        port = effective_port(parsed)
        if host is None or port is None:
            return Decision(False, REASON_INVALID_URL)
        if parsed.userinfo:
            return Decision(False, REASON_USERINFO)
        if not self._rules:
            return Decision(False, REASON_EMPTY)
        host_seen = False
        for rule in self._rules:
            if rule.matches_host(host):
                host_seen = True
                if rule.matches_port(port, scheme):
                    return Decision(True, REASON_ALLOWED, rule.entry)
        return Decision(False, REASON_PORT if host_seen else REASON_HOST)

    def names_address(self, address: IPAddress | str, *, port: int | None = None, scheme: str | None = None) -> bool:
        """Whether an entry names ``address`` as an IP literal (and, when ``port`` is given, allows that port).

        The fetcher asks this after DNS, to let an operator reach a private or loopback address on purpose.
        A name entry (``localhost``) never counts: only the address itself does.
        """
        ip = _parse_address(address) if isinstance(address, str) else address
        if ip is None:
            return False
        return any(
            rule.kind == "address"
            and _same_address(ip, rule.address)
            and (port is None or rule.matches_port(port, scheme))
            for rule in self._rules
        )

    def __repr__(self) -> str:
        return f"EgressPolicy({[rule.entry for rule in self._rules]!r})"


def normalized_url_host(url: httpx.URL) -> str | None:
    """The host of ``url`` as the policy compares it: ASCII (IDNA), lower case, no trailing dot, no brackets."""
    try:
        host = url.raw_host.decode("ascii").lower().rstrip(".")
    except UnicodeDecodeError:
        return None
    if not host:
        return None
    if _parse_address(host) is not None:
        return host
    if not _valid_hostname(host) or _numeric_looking(host):
        return None
    return host


def effective_port(url: httpx.URL) -> int | None:
    """The port a connection to ``url`` uses, or ``None`` when the URL's port is out of range."""
    port = url.port if url.port is not None else DEFAULT_PORTS.get(url.scheme)
    if port is None or not 0 < port < 65536:
        return None
    return port


def _parse_entry(entry: str) -> EgressRule:
    text = entry.lower()
    if any(mark in text for mark in ("://", "/", "@", "?", "#")) or any(c.isspace() for c in text):
        raise EgressEntryError(entry, "expected host[:port], *.domain[:port] or an IP literal, nothing else")
    host_part, port = _split_port(entry, text)
    address = _parse_address(host_part)
    if address is not None:
        return EgressRule("address", address.compressed, port, entry, address)
    if host_part.startswith("*."):
        suffix = _normalize_entry_host(entry, host_part[2:])
        if "." not in suffix:
            raise EgressEntryError(entry, "a wildcard must cover a domain, not a top-level domain")
        return EgressRule("wildcard", suffix, port, entry)
    if "*" in host_part:
        raise EgressEntryError(entry, "'*' is allowed only as a leading '*.' label")
    return EgressRule("host", _normalize_entry_host(entry, host_part), port, entry)


def _split_port(entry: str, text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise EgressEntryError(entry, "unclosed '[' in an IPv6 literal")
        host, rest = text[1:close], text[close + 1 :]
        if not isinstance(_parse_address(host), ipaddress.IPv6Address):
            raise EgressEntryError(entry, "brackets must hold an IPv6 address")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise EgressEntryError(entry, "unexpected text after the IPv6 literal")
        return host, _parse_port(entry, rest[1:])
    if text.count(":") >= 2:  # a bare IPv6 literal; a port needs brackets to be unambiguous
        if _parse_address(text) is None:
            raise EgressEntryError(entry, "not a valid IPv6 address (use [addr]:port for a port)")
        return text, None
    if ":" in text:
        host, _, port_text = text.partition(":")
        return host, _parse_port(entry, port_text)
    return text, None


def _parse_port(entry: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise EgressEntryError(entry, f"port must be 1-65535, got {text!r}")
    return int(text)


def _normalize_entry_host(entry: str, host: str) -> str:
    if not host:
        raise EgressEntryError(entry, "empty host")
    try:
        # The same normalization a URL host gets, so that entry and URL compare in one form.
        ascii_host = httpx.URL(f"http://{host}/").raw_host.decode("ascii").lower().rstrip(".")
    except (httpx.InvalidURL, UnicodeError, ValueError):
        raise EgressEntryError(entry, "not a valid host name") from None
    if not _valid_hostname(ascii_host):
        raise EgressEntryError(entry, "not a valid host name")
    if _numeric_looking(ascii_host):
        raise EgressEntryError(entry, "looks like an IP address but is not a dotted-quad IPv4 literal")
    return ascii_host


def _valid_hostname(host: str) -> bool:
    return 0 < len(host) <= _MAX_HOST_CHARS and all(_LABEL.match(label) for label in host.split("."))


def _numeric_looking(host: str) -> bool:
    # Top-level domains are never all digits; such a name is an IPv4 shorthand that resolvers accept.
    last = host.rsplit(".", 1)[-1]
    return last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:]))


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _same_address(a: IPAddress | None, b: IPAddress | None) -> bool:
    if a is None or b is None:
        return False
    return _unmap(a) == _unmap(b)


def _unmap(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
