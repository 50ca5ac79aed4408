"""``extctl secrets-keygen`` and ``extctl seal``: real key files, envelopes opened with ``sealing.open_envelope``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import sealing
from extctl import main

SECRETS = {"DB_PASSWORD": "pa55-WORD-sealed-4e1f", "API_KEY": "key-123456789"}


def extctl(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTCTL_")}
    return subprocess.run(
        [sys.executable, "-m", "extctl", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
        timeout=60, check=False,
    )


def _error_line(stderr: str, code: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{code}: "), lines[0]
    return lines[0]


def test_secrets_keygen_then_seal_opens_with_the_private_key(tmp_path: Path) -> None:
    keygen = extctl(tmp_path, "secrets-keygen", "--out", "runner.key")
    assert keygen.returncode == 0, keygen.stderr
    private = (tmp_path / "runner.key").read_text().strip()
    public = (tmp_path / "runner.key.pub").read_text().strip()
    assert stat.S_IMODE((tmp_path / "runner.key").stat().st_mode) == 0o600
    # stdout is the public key alone; the private key is named by path, never printed.
    assert keygen.stdout == public + "\n"
    assert sealing.public_key_from_private(private) == public
    assert private not in keygen.stdout + keygen.stderr
    assert "runner.key" in keygen.stderr
    assert f"RUNNER_SECRETS_PUBLIC_KEY={public}" in keygen.stderr

    sealed = extctl(tmp_path, "seal", "--public-key", "runner.key.pub", "--tenant", "acme", "--extension", "echo",
                    "--json", json.dumps(SECRETS))
    assert sealed.returncode == 0, sealed.stderr
    envelope = json.loads(sealed.stdout)
    assert envelope["algorithm"] == sealing.ALGORITHM
    assert "expires_at" not in envelope
    assert SECRETS["DB_PASSWORD"] not in sealed.stdout
    assert sealing.open_envelope(envelope, private, tenant_id="acme", extension_id="echo") == SECRETS
    # Bound to its context: another tenant cannot open it.
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(envelope, private, tenant_id="other", extension_id="echo")

    # The key given inline, the map on stdin, with an expiry bound into the envelope.
    expiring = extctl(tmp_path, "seal", "--public-key", public, "--tenant", "acme", "--extension", "echo",
                      "--expires-at", "2099-01-01T00:00:00+02:00", "--file", "-", stdin=json.dumps(SECRETS))
    assert expiring.returncode == 0, expiring.stderr
    envelope = json.loads(expiring.stdout)
    assert envelope["expires_at"] == "2098-12-31T22:00:00Z"
    assert sealing.open_envelope(envelope, private, tenant_id="acme", extension_id="echo") == SECRETS
    with pytest.raises(sealing.EnvelopeExpired):
        sealing.open_envelope(envelope, private, tenant_id="acme", extension_id="echo",
                              now=datetime(2099, 1, 1, tzinfo=UTC))
    # Another runner key cannot open it.
    other_private, _ = sealing.generate_keypair()
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(envelope, other_private, tenant_id="acme", extension_id="echo")


def test_secrets_keygen_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "runner.key"
    assert main(["secrets-keygen", "--out", str(key)]) == 0
    first = key.read_text()
    capsys.readouterr()
    assert main(["secrets-keygen", "--out", str(key)]) == 1
    _error_line(capsys.readouterr().err, "exists")
    assert key.read_text() == first
    assert main(["secrets-keygen", "--out", str(key), "--force"]) == 0
    assert key.read_text() != first
    assert capsys.readouterr().out.strip() == (tmp_path / "runner.key.pub").read_text().strip()


def test_seal_rejections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, public = sealing.generate_keypair()
    base = ["seal", "--public-key", public, "--tenant", "acme", "--extension", "echo"]

    # Usage (exit 2): the arguments themselves are wrong.
    for extra in (
        ["--json", "[1, 2]"],
        ["--json", "{not json"],
        ["--json", '{"A": 1}'],
        ["--json", "{}", "--expires-at", "2099-01-01"],
        ["--json", "{}", "--expires-at", "2099-01-01T00:00:00"],  # no offset
    ):
        assert main([*base, *extra]) == 2, extra
        assert capsys.readouterr().err.startswith("usage: ")
    with pytest.raises(SystemExit) as info:
        main(base)  # neither --json nor --file
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main([*base, "--json", "{}", "--file", "x.json"])
    assert info.value.code == 2
    capsys.readouterr()

    # Rejected (exit 1): a file with the wrong content, a bad key, a missing key file.
    (tmp_path / "list.json").write_text('["A"]')
    assert main([*base, "--file", str(tmp_path / "list.json")]) == 1
    _error_line(capsys.readouterr().err, "invalid_input")
    (tmp_path / "secret-values.json").write_text('{"A": {"nested": "pa55-hidden"}}')
    assert main([*base, "--file", str(tmp_path / "secret-values.json")]) == 1
    line = _error_line(capsys.readouterr().err, "invalid_input")
    assert "A" in line
    assert "pa55-hidden" not in line
    assert main(["seal", "--public-key", "c2hvcnQ=", "--tenant", "t", "--extension", "e", "--json", "{}"]) == 1
    _error_line(capsys.readouterr().err, "invalid_key")
    missing = str(tmp_path / "missing.pub")
    assert main(["seal", "--public-key", missing, "--tenant", "t", "--extension", "e", "--json", "{}"]) == 1
    _error_line(capsys.readouterr().err, "io_error")
    assert main(["seal", "--public-key", public, "--tenant", "", "--extension", "e", "--json", "{}"]) == 2


def test_seal_takes_an_inline_key_with_a_slash(capsys: pytest.CaptureFixture[str]) -> None:
    # Base64 keys often contain "/": an inline key must not be mistaken for a missing file.
    private, public = next(pair for pair in (sealing.generate_keypair() for _ in range(500)) if "/" in pair[1])
    assert main(["seal", "--public-key", public, "--tenant", "acme", "--extension", "echo",
                 "--json", json.dumps(SECRETS)]) == 0
    envelope = json.loads(capsys.readouterr().out)
    assert sealing.open_envelope(envelope, private, tenant_id="acme", extension_id="echo") == SECRETS
