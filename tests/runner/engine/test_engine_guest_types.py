"""The WAT guests import and export exactly the types of the alga:extension world.

The golden file was rendered from a component that componentize-py built from ``wit/``; a hand-written WAT
type that drifted from the WIT would otherwise go unnoticed (host functions are untyped on the Python side).
"""

from __future__ import annotations

import pytest

from runner_trio.engine import WasmEngine
from tests.guests.wat import golden_signatures, load_wat, signatures, wat_names


def test_caps_guest_covers_every_function_of_the_world(engine: WasmEngine) -> None:
    component = engine.compile(load_wat("caps"))
    assert signatures(engine.wasmtime, component) == golden_signatures()


@pytest.mark.parametrize("name", wat_names())
def test_every_guest_exports_the_world_handler(name: str, engine: WasmEngine) -> None:
    rendered = signatures(engine.wasmtime, engine.compile(load_wat(name)))
    assert rendered["export#handler"] == golden_signatures()["export#handler"]
    for key, value in rendered.items():
        assert golden_signatures()[key] == value
