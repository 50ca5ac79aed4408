"""extctl end to end: the real CLI in a subprocess (``python -m extctl``) on real files and a file:// store."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

import bundles
from bundles import read_bundle
from extctl import main

MANIFEST = {
    "name": "com.example.cli",
    "publisher": "Example",
    "version": "0.1.0",
    "runtime": "wasm-js@1",
    "capabilities": ["cap:log.emit"],
    "ui": {"type": "iframe", "entry": "ui/index.html"},
    "api": {"endpoints": [{"method": "GET", "path": "/hello", "handler": "hello"}]},
}


def _tree(root: Path, manifest: dict[str, object] | None = None) -> Path:
    (root / "dist").mkdir(parents=True)
    (root / "ui").mkdir()
    (root / "dist" / "main.wasm").write_bytes(wasmtime.wat2wasm("(component)"))
    (root / "ui" / "index.html").write_text("<!doctype html><p>hi</p>")
    (root / "manifest.json").write_text(json.dumps(manifest or MANIFEST))
    return root


def extctl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SIGNING_TRUST_BUNDLE", "BUNDLE_STORE_BASE")}
    return subprocess.run(
        [sys.executable, "-m", "extctl", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )


def _one_error_line(result: subprocess.CompletedProcess[str], code: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{code}: "), lines[0]
    return lines[0]


def test_keygen_pack_sign_verify_publish(tmp_path: Path) -> None:
    _tree(tmp_path / "src")

    keygen = extctl(tmp_path, "keygen", "--out", "signing.key")
    assert keygen.returncode == 0, keygen.stderr
    assert stat.S_IMODE((tmp_path / "signing.key").stat().st_mode) == 0o600
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "signing.key.pub").read_bytes()
    assert keygen.stdout.startswith("sha256:")

    pack = extctl(tmp_path, "pack", "src", "--out", "bundle.tar.zst")
    assert pack.returncode == 0, pack.stderr
    digest = pack.stdout.strip()
    data = (tmp_path / "bundle.tar.zst").read_bytes()
    assert digest == read_bundle(data).content_hash
    # Packing again gives the same bytes.
    again = extctl(tmp_path, "pack", "src", "--out", "again.tar.zst")
    assert again.stdout.strip() == digest
    assert (tmp_path / "again.tar.zst").read_bytes() == data

    sign = extctl(tmp_path, "sign", "bundle.tar.zst", "--key", "signing.key")
    assert sign.returncode == 0, sign.stderr
    assert len((tmp_path / "bundle.tar.zst.sig").read_text().splitlines()) == 1

    verify = extctl(tmp_path, "verify", "bundle.tar.zst", "--trust-bundle", "signing.key.pub", "--hash", digest)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith(f"ok {digest} signature=verified key=sha256:")
    assert verify.stderr == ""

    store = tmp_path / "store"
    store.mkdir()
    publish = extctl(tmp_path, "publish", "bundle.tar.zst", "--store", f"file://{store}")
    assert publish.returncode == 0, publish.stderr
    assert publish.stdout.strip() == digest
    hex_ = digest.removeprefix("sha256:")
    stored = store / "sha256" / hex_
    assert sorted(p.name for p in stored.iterdir()) == ["bundle.sig", "bundle.tar.zst", "entry.wasm", "manifest.json"]
    assert (stored / "bundle.tar.zst").read_bytes() == data
    assert (stored / "bundle.sig").read_bytes() == (tmp_path / "bundle.tar.zst.sig").read_bytes().strip()

    # Re-signed (another key, the same bytes): publishing replaces the signature, the bundle stays as it was.
    assert extctl(tmp_path, "keygen", "--out", "second.key").returncode == 0
    resign = extctl(tmp_path, "sign", "bundle.tar.zst", "--key", "second.key")
    assert resign.returncode == 0, resign.stderr
    republish = extctl(tmp_path, "publish", "bundle.tar.zst", "--store", f"file://{store}",
                       "--trust-bundle", "second.key.pub")
    assert republish.returncode == 0, republish.stderr
    assert (stored / "bundle.sig").read_bytes() == (tmp_path / "bundle.tar.zst.sig").read_bytes().strip()
    assert (stored / "bundle.tar.zst").read_bytes() == data

    tenant = extctl(
        tmp_path, "publish", "bundle.tar.zst", "--store", f"file://{store}",
        "--key-template", "tenants/{tenant}/sha256/{hex}", "--key-field", "tenant=acme",
    )
    assert tenant.returncode == 0, tenant.stderr
    assert (store / "tenants" / "acme" / "sha256" / hex_ / "bundle.tar.zst").read_bytes() == data


def test_manifest_schema_is_the_shipped_one(tmp_path: Path) -> None:
    printed = extctl(tmp_path, "manifest-schema")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == bundles.manifest_schema_text()
    assert json.loads(printed.stdout)["required"] == ["name", "version"]
    assert main(["manifest-schema", "--out", str(tmp_path / "manifest.schema.json")]) == 0
    assert (tmp_path / "manifest.schema.json").read_text() == printed.stdout


def test_verify_rejections(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    # Set up in-process (the subprocess path of these commands is covered above).
    assert main(["keygen", "--out", str(tmp_path / "a.key")]) == 0
    assert main(["keygen", "--out", str(tmp_path / "b.key"), "--algorithm", "ecdsa-p256"]) == 0
    assert main(["pack", str(tmp_path / "src"), "--out", str(tmp_path / "bundle.tar.zst")]) == 0
    assert main(["sign", str(tmp_path / "bundle.tar.zst"), "--key", str(tmp_path / "a.key")]) == 0

    wrong_key = extctl(tmp_path, "verify", "bundle.tar.zst", "--trust-bundle", "b.key.pub")
    assert wrong_key.returncode == 1
    assert "does not verify" in _one_error_line(wrong_key, "signature_invalid")

    unsigned = extctl(tmp_path, "verify", "bundle.tar.zst", "--sig", "missing.sig", "--trust-bundle", "a.key.pub")
    assert unsigned.returncode == 1
    _one_error_line(unsigned, "io_error")

    (tmp_path / "empty.sig").write_text("")
    no_sig = extctl(tmp_path, "verify", "bundle.tar.zst", "--sig", "empty.sig", "--trust-bundle", "a.key.pub")
    assert no_sig.returncode == 1
    assert "no signature" in _one_error_line(no_sig, "signature_invalid")

    # Without a trust bundle the runner would run it (development mode): exit 0 with a warning; the signature
    # beside the bundle is reported as there (not checked), and one that is not base64 is refused.
    dev = extctl(tmp_path, "verify", "bundle.tar.zst")
    assert dev.returncode == 0
    assert " signature=signed " in dev.stdout
    assert dev.stderr.startswith("warning:")
    (tmp_path / "plain.tar.zst").write_bytes((tmp_path / "bundle.tar.zst").read_bytes())
    plain = extctl(tmp_path, "verify", "plain.tar.zst")
    assert plain.returncode == 0
    assert " signature=unsigned-dev " in plain.stdout
    (tmp_path / "bad.sig").write_text("%%% not base64")
    bad = extctl(tmp_path, "verify", "plain.tar.zst", "--sig", "bad.sig")
    assert bad.returncode == 1
    assert "not base64" in _one_error_line(bad, "signature_invalid")

    data = bytearray((tmp_path / "bundle.tar.zst").read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "flipped.tar.zst").write_bytes(bytes(data))
    (tmp_path / "flipped.tar.zst.sig").write_bytes((tmp_path / "bundle.tar.zst.sig").read_bytes())
    flipped = extctl(tmp_path, "verify", "flipped.tar.zst", "--trust-bundle", "a.key.pub")
    assert flipped.returncode == 1
    _one_error_line(flipped, "signature_invalid")
    digest = read_bundle((tmp_path / "bundle.tar.zst").read_bytes()).content_hash
    mismatch = extctl(tmp_path, "verify", "flipped.tar.zst", "--hash", digest)
    assert mismatch.returncode == 1
    _one_error_line(mismatch, "hash_mismatch")


def test_bad_bundles_are_rejected(tmp_path: Path) -> None:
    bad = dict(MANIFEST, api={"endpoints": [{"method": "FETCH", "path": "/x", "handler": "h"}]})
    _tree(tmp_path / "bad", bad)
    pack = extctl(tmp_path, "pack", "bad", "--out", "bad.tar.zst")
    assert pack.returncode == 1
    assert "api.endpoints[0].method" in _one_error_line(pack, "invalid_manifest")
    assert not (tmp_path / "bad.tar.zst").exists()

    (tmp_path / "junk.tar.zst").write_bytes(b"definitely not a bundle")
    verify = extctl(tmp_path, "verify", "junk.tar.zst")
    assert verify.returncode == 1
    _one_error_line(verify, "invalid_archive")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    no_command = extctl(tmp_path)
    assert no_command.returncode == 2
    bad_option = extctl(tmp_path, "pack", "--frobnicate")
    assert bad_option.returncode == 2
    assert "usage:" in bad_option.stderr
    _tree(tmp_path / "src")
    inside = extctl(tmp_path, "pack", "src", "--out", "src/bundle.tar.zst")
    assert inside.returncode == 2
    assert not (tmp_path / "src" / "bundle.tar.zst").exists()


def test_in_process_main(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BUNDLE_STORE_BASE", raising=False)
    src = _tree(tmp_path / "src")
    key = tmp_path / "k"
    assert main(["keygen", "--out", str(key)]) == 0
    assert main(["keygen", "--out", str(key)]) == 1  # never overwrites a key without --force
    assert capsys.readouterr().err.startswith("exists: ")
    assert main(["keygen", "--out", str(key), "--force", "--algorithm", "ecdsa-p256"]) == 0
    bundle = tmp_path / "b.tar.zst"
    assert main(["pack", str(src), "--out", str(bundle)]) == 0
    assert main(["publish", str(bundle)]) == 2  # no --store and no BUNDLE_STORE_BASE
    assert main(["publish", str(bundle), "--store", "ftp://nowhere"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("store_error: ")
    with pytest.raises(SystemExit) as info:
        main(["verify"])
    assert info.value.code == 2
