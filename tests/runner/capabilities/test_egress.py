from __future__ import annotations

import ipaddress

import pytest

from runner_trio.capabilities.http import EgressEntryError, EgressPolicy

POLICY = EgressPolicy.parse("api.example.com, *.example.org:8443, 127.0.0.1:9000, [::1]:8080, Bücher.de, 10.1.2.3, ::2")


@pytest.mark.parametrize(
    ("url", "allowed", "reason"),
    [
        ("http://api.example.com/x", True, "allowed"),
        ("https://api.example.com/x?q=1", True, "allowed"),
        ("HTTPS://API.Example.COM/", True, "allowed"),
        ("https://api.example.com./", True, "allowed"),
        ("http://api.example.com:80/", True, "allowed"),
        ("http://api.example.com:443/", False, "port"),  # portless entry: the scheme's default port only
        ("https://api.example.com:8443/", False, "port"),
        ("http://sub.api.example.com/", False, "host"),  # a plain entry does not cover subdomains
        ("https://a.example.org:8443/", True, "allowed"),
        ("http://a.b.example.org:8443/", True, "allowed"),  # any depth, either scheme on an explicit port
        ("https://example.org:8443/", False, "host"),  # *.domain excludes the apex
        ("https://a.example.org/", False, "port"),
        ("https://evil-example.org:8443/", False, "host"),
        ("https://a.example.org.evil.com:8443/", False, "host"),
        ("http://127.0.0.1:9000/", True, "allowed"),
        ("http://127.0.0.1/", False, "port"),
        ("http://[::1]:8080/", True, "allowed"),
        ("http://[::2]/", True, "allowed"),
        ("http://10.1.2.3/", True, "allowed"),
        ("http://xn--bcher-kva.de/", True, "allowed"),
        ("http://BÜCHER.de/", True, "allowed"),
        ("ftp://api.example.com/", False, "scheme"),
        ("file:///etc/passwd", False, "scheme"),
        ("api.example.com/x", False, "scheme"),
        ("http://user:pw@api.example.com/", False, "userinfo"),
        ("http://2130706433/", False, "invalid-url"),  # an IPv4 shorthand, never a name
        ("http://127.1:9000/", False, "invalid-url"),
        ("http://api.example.com:70000/", False, "invalid-url"),
        ("http://[::1/", False, "invalid-url"),
        ("http:///nohost", False, "invalid-url"),
    ],
)
def test_allows_table(url: str, allowed: bool, reason: str) -> None:
    decision = POLICY.allows(url)
    assert (decision.allowed, decision.reason) == (allowed, reason)


def test_empty_allowlist_denies_everything() -> None:
    policy = EgressPolicy.parse("")
    assert policy.denies_all
    assert policy.allows("https://example.com/").reason == "empty-allowlist"
    assert not policy.allows("http://127.0.0.1/")
    assert EgressPolicy.parse([" ", ""]).denies_all


def test_decision_names_the_entry() -> None:
    decision = POLICY.allows("https://x.example.org:8443/")
    assert decision.entry == "*.example.org:8443"
    assert bool(decision)


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "*.com",
        "a*.example.com",
        "*.*.example.com",
        "https://example.com",
        "example.com/path",
        "user@example.com",
        "example.com:0",
        "example.com:65536",
        "example.com:http",
        "127.1",
        "2130706433",
        "0x7f.1",
        "[::1",
        "[example.com]:80",
        "[::1]x",
        "1:2:3",
        "exa mple.com",
        "example..com",
        "-bad.example.com",
        "a" * 64 + ".com",
    ],
)
def test_bad_entries_are_refused_by_name(entry: str) -> None:
    with pytest.raises(EgressEntryError) as info:
        EgressPolicy.parse([entry])
    assert repr(entry) in str(info.value)
    assert info.value.entry == entry


def test_names_address_only_for_ip_literal_entries() -> None:
    policy = EgressPolicy.parse(["localhost:9000", "127.0.0.1:9000", "10.0.0.7"])
    assert policy.names_address("127.0.0.1")
    assert policy.names_address(ipaddress.ip_address("127.0.0.1"), port=9000, scheme="http")
    assert not policy.names_address("127.0.0.1", port=9001, scheme="http")
    assert policy.names_address("::ffff:127.0.0.1", port=9000)  # the IPv4-mapped form is the same address
    assert policy.names_address("10.0.0.7", port=443, scheme="https")
    assert not policy.names_address("10.0.0.7", port=8080, scheme="http")
    assert not policy.names_address("::1")  # localhost resolves there, but no entry names it
    assert not policy.names_address("not-an-ip")
