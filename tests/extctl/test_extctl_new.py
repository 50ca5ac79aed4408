"""``extctl new`` (the templates are package data) and the parts of ``extctl build``/``extctl dev`` that need no
toolchain: what the cache key sees, what the watcher ignores, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bundles
from extctl import main
from extctl._build import source_hash
from extctl._commands.dev import _watch_filter

ROOT = Path(__file__).resolve().parents[2]
STATIC_BRIDGE = ROOT / "gateway_quart" / "static" / "ext-iframe.js"


@pytest.mark.parametrize("template", ["js", "py"])
def test_new_scaffolds_a_folder_that_packs(template: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "my-ext"
    assert main(["new", "my-ext", "--template", template, "--dir", str(dest)]) == 0
    handler = {"js": "handler.js", "py": "app.py"}[template]
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert files == {"manifest.json", handler, "README.md", ".gitignore", "ui/index.html", "ui/app.js",
                     "ui/style.css", "ui/ext-iframe.js", "wit/alga-extension-runner.wit"} | (
        {"package.json"} if template == "js" else set())
    printed = capsys.readouterr().out
    assert str(dest / handler) in printed
    assert f"extctl dev {dest}" in printed

    manifest = bundles.parse_manifest((dest / "manifest.json").read_bytes(), strict=True)
    assert manifest.name == "com.example.my-ext"
    assert manifest.runtime == f"wasm-{template}@1"
    assert [(e.method, e.path) for e in manifest.endpoints or ()] == [("GET", "/hello")]
    assert "__NAME__" not in "".join(p.read_text() for p in dest.rglob("*") if p.is_file())
    assert "<title>my-ext</title>" in (dest / "ui" / "index.html").read_text()
    # The shipped copies are the repo's own: the host page's protocol helper and the world.
    assert (dest / "ui" / "ext-iframe.js").read_bytes() == STATIC_BRIDGE.read_bytes()
    assert (dest / "wit" / "alga-extension-runner.wit").read_bytes() == (
        ROOT / "wit" / "alga-extension-runner.wit").read_bytes()
    if template == "js":
        package = json.loads((dest / "package.json").read_text())
        assert package["name"] == "my-ext"
        assert "--wit wit" in package["scripts"]["build"]
        assert "@bytecodealliance/componentize-js" in package["devDependencies"]

    # The folder is a bundle once built: pack accepts it with a component in place.
    (dest / "dist").mkdir()
    (dest / "dist" / "main.wasm").write_bytes(b"\x00asm\x0d\x00\x01\x00")
    assert main(["pack", str(dest), "--out", str(tmp_path / "b.tar.zst")]) == 0


def test_new_refuses_a_bad_name_or_a_folder_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "My_Ext", "--dir", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.startswith("usage: name 'My_Ext' must be lower-case")
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert main(["new", "used", "--template", "py", "--dir", str(used)]) == 2
    assert "is not an empty directory" in capsys.readouterr().err
    assert sorted(p.name for p in used.iterdir()) == ["keep.txt"]


def test_the_build_key_ignores_outputs_and_ui(tmp_path: Path) -> None:
    src = tmp_path / "ext"
    (src / "ui").mkdir(parents=True)
    (src / "app.py").write_text("A = 1\n")
    (src / "ui" / "index.html").write_text("<p>one</p>")
    first = source_hash(src)
    for rel, text in (("ui/index.html", "<p>two</p>"), ("dist/main.wasm", "x"), ("node_modules/m/i.js", "x"),
                      ("__pycache__/app.cpython-311.pyc", "x"), ("web/main.ts", "x"), ("README.md", "x"),
                      ("manifest.json", "{}")):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
        assert source_hash(src) == first, rel
    (src / "app.py").write_text("A = 2\n")
    assert source_hash(src) != first
    (src / "lib.py").write_text("")
    assert len({first, source_hash(src)}) == 2


def test_the_dev_watcher_ignores_build_outputs(tmp_path: Path) -> None:
    from watchfiles import Change

    accept = _watch_filter()
    for rel in ("dist/main.wasm", "ui/dist/app.js", "node_modules/x/index.js", "__pycache__/a.pyc", ".git/HEAD"):
        assert not accept(Change.modified, str(tmp_path / rel)), rel
    for rel in ("app.py", "ui/app.js", "src/handler.ts", "manifest.json"):
        assert accept(Change.modified, str(tmp_path / rel)), rel


def test_build_refuses_a_folder_without_a_toolchain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    assert main(["build", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("unknown_toolchain: ")
    assert main(["build", str(tmp_path / "missing")]) == 2


def test_dev_needs_a_manifest_and_an_admin_token(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("EXTCTL_ADMIN_TOKEN", "EXT_DEV_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert main(["dev", str(tmp_path)]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
    assert main(["new", "ext", "--template", "py"]) == 0
    capsys.readouterr()
    assert main(["dev", "ext", "--once"]) == 2
    assert capsys.readouterr().err.startswith("usage: no admin token")


def test_the_example_ui_ships_the_hosts_protocol_helper() -> None:
    assert (ROOT / "examples" / "hello-py" / "ui" / "ext-iframe.js").read_bytes() == STATIC_BRIDGE.read_bytes()
