"""Manifest keys outside the schema: ``extctl pack``/``verify`` warn about each one; ``pack --strict`` refuses.

In process (``extctl.main``): the subprocess path of both commands is covered by test_extctl_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bundles import read_bundle
from extctl import main
from tests.extctl.test_extctl_cli import MANIFEST, _tree

WITH_UNKNOWN = dict(
    MANIFEST,
    capabilites=["cap:http.fetch"],
    api={"endpoints": [{"method": "GET", "path": "/hello", "handler": "hello", "auth": "none"}]},
)
UNKNOWN = ("capabilites", "api.endpoints[0].auth")
WARNINGS = [f"warning: manifest {path}: unknown field, ignored" for path in UNKNOWN]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: manifest ")]


def test_pack_and_verify_warn_about_each_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _tree(tmp_path / "src", WITH_UNKNOWN)
    bundle = tmp_path / "bundle.tar.zst"
    assert main(["pack", str(src), "--out", str(bundle)]) == 0
    pack = capsys.readouterr()
    assert pack.out.startswith("sha256:")
    assert _warnings(pack.err) == WARNINGS
    # The bundle holds the manifest as written: the reference's tools see the same bytes.
    assert read_bundle(bundle.read_bytes()).manifest.unknown_fields == UNKNOWN

    assert main(["verify", str(bundle)]) == 0
    verify = capsys.readouterr()
    assert verify.out.startswith("ok sha256:")
    assert _warnings(verify.err) == WARNINGS


def test_pack_strict_refuses_unknown_keys_naming_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _tree(tmp_path / "src", WITH_UNKNOWN)
    bundle = tmp_path / "bundle.tar.zst"
    assert main(["pack", str(src), "--out", str(bundle), "--strict"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("invalid_manifest: ")
    assert "strict" in lines[0]
    for path in UNKNOWN:
        assert path in lines[0]
    assert not bundle.exists()


def test_known_keys_give_no_warning_even_in_strict_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference_shaped = dict(
        MANIFEST,
        sbom="sbom.spdx.json",
        events=[{"topic": "ticket.created", "handler": "dist/main"}],
        ui={
            "type": "iframe",
            "entry": "ui/index.html",
            "hooks": {"appMenu": {"label": "CLI"}, "ticketTab": {"x": 1}},
            "routes": [{"path": "/"}],
        },
        api={"endpoints": [{"method": "GET", "path": "/hello", "handler": "hello", "schedulable": True}]},
    )
    src = _tree(tmp_path / "src", reference_shaped)
    bundle = tmp_path / "bundle.tar.zst"
    assert main(["pack", str(src), "--out", str(bundle), "--strict"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["verify", str(bundle)]) == 0
    assert _warnings(capsys.readouterr().err) == []


def test_wrong_types_still_name_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = dict(MANIFEST, api={"endpoints": [{"method": "GET", "path": "/x", "handler": "h", "schedulable": "yes"}]})
    src = _tree(tmp_path / "src", bad)
    bundle = tmp_path / "bad.tar.zst"
    for extra in ([], ["--strict"]):
        assert main(["pack", str(src), "--out", str(bundle), *extra]) == 1
        line = capsys.readouterr().err.strip()
        assert line.startswith("invalid_manifest: ")
        assert "api.endpoints[0].schedulable" in line
    assert not bundle.exists()
