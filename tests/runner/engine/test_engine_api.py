"""The public names of the engine and capability packages."""

from __future__ import annotations

import runner_trio.capabilities as capabilities
import runner_trio.engine as engine


def test_every_exported_name_resolves() -> None:
    for package in (engine, capabilities):
        assert sorted(package.__all__) == sorted(set(package.__all__))
        for name in package.__all__:
            assert getattr(package, name) is not None, name


def test_default_capabilities_cover_the_world_once() -> None:
    names = [capability.name for capability in capabilities.default_capabilities()]
    assert sorted(names) == sorted(capabilities.WORLD_INTERFACES)
    always = {capability.name for capability in capabilities.default_capabilities() if capability.grant is None}
    assert always == {"context", "logging", "user", "user-v2"}
