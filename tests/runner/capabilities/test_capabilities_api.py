"""The capabilities' public names, and the one shape every unit has."""

from __future__ import annotations

from pathlib import Path

import pytest

import runner_trio.capabilities as capabilities
from runner_trio import ConfigError, Settings
from runner_trio._runtime import Runtime
from runner_trio.capabilities import (
    CapabilityConfigError,
    CapabilityError,
    EgressEntryError,
    Hooks,
    HostCallError,
    InvocationInputs,
    SecretEnvelopeError,
    StorageConfigError,
    configure_capabilities,
)
from runner_trio.capabilities.http import GuestFetcher
from runner_trio.capabilities.secrets import SecretResolver
from runner_trio.capabilities.storage import SqliteStorage, WitStorageAdapter
from runner_trio.engine import Invocation, InvocationContext

CAPABILITY_NAMES = {
    "DEFAULT_MAX_LOG_EVENTS", "GUEST_LOGGER", "HOST_ERROR_VARIANTS", "PACKAGE", "UNITS", "WORLD_INTERFACES",
    # the unit shape and the world
    "Capability", "CapabilityBase", "CapabilitySettings", "Unit", "Hooks", "InvocationInputs", "configure_capabilities",
    "default_capabilities", "prepare_invocation", "world_linker", "interface_name", "guest_error", "denied",
    # the error tree
    "CapabilityError", "CapabilityConfigError", "EgressEntryError", "StorageConfigError", "HostCallError",
    "SecretEnvelopeError",
    # one class per interface
    "ContextCapability", "LoggingCapability", "UserCapability", "UserV2Capability", "SecretsCapability",
    "HttpCapability", "StorageCapability", "UiProxyCapability", "SchedulerCapability", "InvoicingCapability",
    "ClientsCapability", "ServicesCapability",
    # what backends implement
    "HttpBackend", "HttpResponseLike", "StorageBackend", "StorageEntry", "StorageEntryLike", "WitStorage",
    "UiProxyBackend", "PlatformBackend",
}  # fmt: skip

UNIT_PACKAGES = ("context", "user", "logging", "http", "storage", "secrets", "ui_proxy", "platform")


def test_the_list_is_the_units() -> None:
    assert sorted(unit.__name__.rsplit(".", 1)[1] for unit in capabilities.UNITS) == sorted(UNIT_PACKAGES)


def test_capabilities_public_names_are_pinned() -> None:
    assert set(capabilities.__all__) == CAPABILITY_NAMES
    assert len(capabilities.__all__) == len(CAPABILITY_NAMES)


@pytest.mark.parametrize("unit", UNIT_PACKAGES)
def test_every_unit_exposes_configure_and_only_resolvable_names(unit: str) -> None:
    module = getattr(capabilities, unit)
    assert {"configure", "defaults"} <= set(module.__all__)
    assert sorted(module.__all__) == sorted(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert module in capabilities.UNITS
    names = [capability.name for capability in module.defaults()]
    assert names  # every unit implements at least one interface of the world
    assert set(names) <= set(capabilities.WORLD_INTERFACES)


def test_one_error_tree() -> None:
    for error in (HostCallError, SecretEnvelopeError, CapabilityConfigError, EgressEntryError, StorageConfigError):
        assert issubclass(error, CapabilityError)
    assert HostCallError("denied").code == "denied"
    assert SecretEnvelopeError("vault_failed", "x").code == "vault_failed"
    assert StorageConfigError("bad").setting == "RUNNER_STORAGE_URL"
    assert str(StorageConfigError("bad")) == "RUNNER_STORAGE_URL: bad"
    assert isinstance(EgressEntryError("a b", "bad"), ValueError)


def test_configured_capabilities_cover_the_world_in_order(tmp_path: Path) -> None:
    denied: list[str] = []
    configured = configure_capabilities(
        Settings(var_dir=tmp_path, egress_allowlist=("api.example.com",)), Hooks(on_egress_denied=denied.append)
    )
    assert [capability.name for capability in configured] == list(capabilities.WORLD_INTERFACES)
    by_name = {capability.name: capability for capability in configured}
    http = by_name["http"]
    assert isinstance(http, capabilities.HttpCapability)
    assert isinstance(http.backend, GuestFetcher)
    storage = by_name["storage"]
    assert isinstance(storage, capabilities.StorageCapability)
    assert isinstance(storage.backend, WitStorageAdapter)
    assert isinstance(storage.backend.backend, SqliteStorage)
    secrets = by_name["secrets"]
    assert isinstance(secrets, capabilities.SecretsCapability)
    assert isinstance(secrets.resolver, SecretResolver)
    for name in ("ui-proxy", "scheduler", "clients"):  # no URL configured: no backend, every call denied
        assert by_name[name].backend is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"egress_allowlist": ("*.com",)}, "EXT_EGRESS_ALLOWLIST"),
        ({"storage_url": "mysql://db/x"}, "RUNNER_STORAGE_URL"),
    ],
)
def test_a_bad_setting_names_itself(tmp_path: Path, changes: dict[str, object], setting: str) -> None:
    with pytest.raises(CapabilityConfigError) as info:
        configure_capabilities(Settings(var_dir=tmp_path, **changes))  # type: ignore[arg-type]
    assert info.value.setting == setting


async def test_prepare_leaves_an_invocation_without_secrets_as_it_is(tmp_path: Path) -> None:
    configured = configure_capabilities(Settings(var_dir=tmp_path))
    invocation = Invocation(InvocationContext(tenant_id="t", extension_id="e"))
    prepared = await capabilities.prepare_invocation(configured, invocation, InvocationInputs())
    assert prepared is invocation
    opened = await capabilities.prepare_invocation(
        configured, invocation, InvocationInputs(secret_envelope={"algorithm": "inline/base64", "ciphertext_b64": ""})
    )
    assert opened.secrets is not None
    assert await opened.secrets.list_keys() == []
    for capability in configured:
        await capability.aclose()


async def test_the_runner_stops_on_a_bad_capability_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        await Runtime.open(Settings(var_dir=tmp_path, storage_url="mysql://db/x"))
    expected = ("config_error: RUNNER_STORAGE_URL: expected sqlite:///path, postgresql://user@host:port/db or an "
                "http(s):// base URL")
    assert info.value.wire_error == expected
