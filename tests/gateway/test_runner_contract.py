"""The gateway reads the runner's answer by its error code (contract.ExecuteResult), never by its prose."""

from __future__ import annotations

import pytest

import contract

from ._helpers import RunnerReply
from .conftest import Gateway, Tenant


@pytest.mark.parametrize("status", [504, 500])
async def test_execute_failed_timeout_is_gateway_timeout(installed: tuple[Gateway, Tenant], status: int) -> None:
    gateway, tenant = installed
    gateway.runner.reply = lambda _: RunnerReply(status=status, error="execute_failed: timeout", body=None)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 504
    assert resp.json()["error"] == "gateway_timeout"


async def test_timeout_in_another_codes_detail_is_not_a_timeout(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = lambda _: RunnerReply(status=500, error="secret_decrypt_failed: vault_timeout", body=None)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 502
    assert resp.json()["error"] == "bad_gateway"


async def test_the_runner_receives_the_contracts_encoding(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.post("/api/ext/echo/items", content=b"{}", headers=tenant.auth)
    assert resp.status_code == 200
    body = gateway.runner.calls[0]["body"]
    request = contract.decode_execute_request(body, max_body_bytes=1 << 20)
    assert contract.encode_execute_request(request) == body
    assert request.http.body == b"{}"
    assert request.context.tenant_id == "acme"
