"""Tiny real HTTP servers for the capability tests: a raw ASGI app served by Hypercorn on 127.0.0.1:0."""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.config import Config
from hypercorn.trio import serve


@dataclass
class Req:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Resp:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncIterator[bytes] = b""

    @classmethod
    def json(cls, status: int, data: Any) -> Resp:
        return cls(status, [("content-type", "application/json")], json.dumps(data).encode())


Handler = Callable[[Req], Awaitable[Resp]]


def asgi_app(handler: Handler, seen: list[Req]) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        request = Req(
            scope["method"],
            scope["raw_path"].decode("latin-1"),
            scope["query_string"].decode("latin-1"),
            [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]],
            body,
        )
        seen.append(request)
        response = await handler(request)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if isinstance(response.body, bytes):
            await send({"type": "http.response.body", "body": response.body})
            return
        async for chunk in response.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


@dataclass
class Server:
    url: str
    port: int
    seen: list[Req]


async def start_server(
    nursery: trio.Nursery, handler: Handler, *, certfile: Path | None = None, keyfile: Path | None = None
) -> Server:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    if certfile is not None and keyfile is not None:
        config.certfile = str(certfile)
        config.keyfile = str(keyfile)
    seen: list[Req] = []
    binds = await nursery.start(partial(serve, asgi_app(handler, seen), config))
    url = binds[0]
    return Server(url, int(url.rsplit(":", 1)[1]), seen)


def self_signed(tmp: Path, name: str) -> tuple[Path, Path, str]:
    """A self-signed certificate for DNS name ``name``: (certfile, keyfile, PEM text to trust)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.2"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    certfile, keyfile = tmp / f"{name}.crt", tmp / f"{name}.key"
    certfile.write_bytes(pem)
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certfile, keyfile, pem.decode("ascii")
