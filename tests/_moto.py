"""moto's S3/IAM server in a subprocess on a free port, for tests that need a real S3 API.

``moto_server()`` starts it and yields the endpoint URL; ``MotoServer`` is the same with an explicit
``stop()`` (for "the server went away" tests). ``enable_iam_auth()`` turns on moto's SigV4 + IAM checks and
returns admin credentials; ``create_iam_user()`` and ``create_bucket()`` do the rest of the setup (through
boto3, which moto depends on).

The child runs moto's own WSGI application (the one behind ``moto_server``) in werkzeug's single-threaded
server, for three reasons:

* the child binds port 0 and reports the port, so there is no window in which another process takes it;
* moto evaluates ``If-None-Match: *`` on PUT as an unlocked check-then-set, so under the threaded
  ``moto_server`` two concurrent conditional writes can both succeed, which S3 and MinIO never allow;
  serving one request at a time makes conditional writes atomic like the real services;
* moto's global state stays out of the test process.

Run as a script (``python tests/_moto.py --serve``) it is the child.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final

DEFAULT_READY_TIMEOUT: Final = 30.0
DEFAULT_STOP_TIMEOUT: Final = 5.0
DEFAULT_REGION: Final = "us-east-1"
HOST: Final = "127.0.0.1"

_PORT_LINE: Final = "moto-listening"
ALLOW_ALL_POLICY: Final = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class MotoCredentials:
    access_key: str
    secret_key: str = field(repr=False)


class MotoServer:
    """One moto server process. ``start()`` returns once it answers HTTP; ``stop()`` ends it."""

    def __init__(self, *, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        deadline = time.monotonic() + self._ready_timeout
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- the child's stderr, kept until stop()
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve"],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        try:
            port = self._read_port(deadline)
            self.url = f"http://{HOST}:{port}"
            self._wait_serving(port, deadline)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _fail(self, why: str) -> RuntimeError:
        assert self._log is not None
        self._log.seek(0)
        tail = self._log.read()[-4000:].decode("utf-8", "replace")
        return RuntimeError(f"moto server {why}; its stderr:\n{tail}")

    def _read_port(self, deadline: float) -> int:
        assert self._proc is not None
        assert self._proc.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail("did not report its port in time")
            readable, _, _ = select.select([self._proc.stdout], [], [], remaining)
            if readable:
                byte = self._proc.stdout.read(1)
                if not byte:
                    raise self._fail("exited before listening")
                line += byte
        word, _, port = line.decode().strip().partition(" ")
        if word != _PORT_LINE or not port.isdigit():
            raise self._fail(f"printed {line!r} instead of its port")
        return int(port)

    def _wait_serving(self, port: int, deadline: float) -> None:
        while True:
            connection = http.client.HTTPConnection(HOST, port, timeout=max(0.1, deadline - time.monotonic()))
            try:
                connection.request("GET", "/moto-api/reset-auth")  # any answer means the app is serving
                connection.getresponse().read()
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise self._fail("did not answer HTTP in time") from None
                time.sleep(0.05)
            finally:
                connection.close()

    def stop(self, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Terminate the process (kill it if it lingers); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def moto_server(*, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> Iterator[str]:
    """Start a moto server on a free port of 127.0.0.1, yield its endpoint URL, stop it.

    Authentication is off until ``enable_iam_auth`` is called: any credentials are accepted.
    """
    with MotoServer(ready_timeout=ready_timeout) as server:
        yield server.url


def _client(service: str, endpoint_url: str, credentials: MotoCredentials, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def create_iam_user(
    endpoint_url: str,
    name: str,
    *,
    credentials: MotoCredentials,
    policy: dict[str, Any] | None = None,
    region: str = DEFAULT_REGION,
) -> MotoCredentials:
    """Create IAM user ``name`` with an optional inline policy; return a fresh access key of it."""
    iam = _client("iam", endpoint_url, credentials, region)
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return MotoCredentials(key["AccessKeyId"], key["SecretAccessKey"])


def enable_iam_auth(endpoint_url: str, *, region: str = DEFAULT_REGION) -> MotoCredentials:
    """Create an ``admin`` user allowed everything, then make moto check SigV4 and IAM on every request.

    Returns:
        the admin's credentials; requests signed otherwise get 403 from then on.
    """
    bootstrap = MotoCredentials("bootstrap", "bootstrap")
    admin = create_iam_user(endpoint_url, "admin", credentials=bootstrap, policy=ALLOW_ALL_POLICY, region=region)
    # text/plain: with a form content type moto consumes the body as form fields and reads "" as the count.
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return admin


def create_bucket(
    endpoint_url: str, bucket: str, *, credentials: MotoCredentials, region: str = DEFAULT_REGION
) -> None:
    """Create ``bucket`` (path-style request, signed with ``credentials``)."""
    _client("s3", endpoint_url, credentials, region).create_bucket(Bucket=bucket)


def put_object(
    endpoint_url: str,
    bucket: str,
    key: str,
    data: bytes,
    *,
    credentials: MotoCredentials,
    region: str = DEFAULT_REGION,
) -> None:
    """Write ``data`` under ``key`` with boto3 (an independent writer, unconditional)."""
    _client("s3", endpoint_url, credentials, region).put_object(Bucket=bucket, Key=key, Body=data)


def list_keys(
    endpoint_url: str, bucket: str, *, credentials: MotoCredentials, region: str = DEFAULT_REGION
) -> list[str]:
    """Every key in ``bucket`` (up to 1000), for asserting what a test wrote."""
    response = _client("s3", endpoint_url, credentials, region).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in response.get("Contents", []))


def _serve() -> None:
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(
        HOST, 0, DomainDispatcherApplication(create_backend_app), threaded=False, request_handler=MotoRequestHandler
    )
    sys.stdout.write(f"{_PORT_LINE} {server.server_port}\n")
    sys.stdout.flush()
    # Nobody reads stdout after the port line: stray prints must not fill the pipe and stall the server.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    server.serve_forever()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
