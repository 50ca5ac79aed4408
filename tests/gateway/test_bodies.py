"""One typed model per request body: the validator and the OpenAPI schema both come from it and agree."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from jsonschema import Draft202012Validator

from gateway_quart import InvalidRequest, openapi_document
from gateway_quart._bodies import (
    BODIES,
    InstallCreate,
    SecretsReplace,
    SessionCreate,
    TenantCreate,
    TokenCreate,
    UserCreate,
)
from gateway_quart._rules import Text, body_fields, body_schema, parse_body

# (model, body) pairs the handlers accept; each is also valid against the model's schema.
ACCEPTED: list[tuple[type, Any]] = [
    (SessionCreate, {"token": "agt_x"}),
    (TenantCreate, {"name": "Acme"}),
    (TenantCreate, {"id": "acme.eu-1", "name": "Acme"}),
    (TenantCreate, {"id": None, "name": "Acme"}),  # null is absent
    (UserCreate, {"email": "a@b.c", "roles": []}),
    (UserCreate, {"email": "a@b.c", "roles": ["admin", "viewer"], "user_type": "client", "client_name": "C",
                  "client_id": "c-1", "name": "A"}),
    (TokenCreate, {}),
    (TokenCreate, {"name": "ci", "expires_in_s": 60}),
    (InstallCreate, {"extension_id": "echo", "granted_capabilities": ["cap:http.fetch"], "config": {"A.b-1": "x"},
                     "enabled": False, "content_hash": "sha256:" + "0" * 64}),
    (SecretsReplace, {"secrets": {"API_KEY": "v"}, "expires_at": "2030-01-01T00:00:00Z"}),
]

# (model, body, the fields the handler names) for bodies both refuse.
REFUSED: list[tuple[type, Any, dict[str, str]]] = [
    (TenantCreate, ["a"], {"$": "must be a JSON object", "name": "is required"}),
    (TenantCreate, {"name": None}, {"name": "is required"}),
    (TenantCreate, {"name": "   "}, {"name": "must not be empty"}),
    (TenantCreate, {"name": "x" * 201}, {"name": "must be at most 200 characters"}),
    (TenantCreate, {"id": "-acme", "name": "A"},
     {"id": "must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit"}),
    (TenantCreate, {"name": "A", "x": 1}, {"x": "unknown field"}),
    (UserCreate, {"email": "nope", "roles": ["root"]},
     {"email": "must be an email address", "roles[0]": "must be one of: admin, member, viewer"}),
    (UserCreate, {"email": "a@b.c", "roles": ["admin"], "user_type": "robot"},
     {"user_type": "must be one of: internal, client"}),
    (UserCreate, {"email": "a@b.c", "roles": ["admin"] * 9}, {"roles": "must have at most 8 items"}),
    (TokenCreate, {"expires_in_s": 59}, {"expires_in_s": "must be an integer in 60..31622400"}),
    (TokenCreate, {"expires_in_s": True}, {"expires_in_s": "must be an integer in 60..31622400"}),
    (InstallCreate, {"extension_id": "echo", "enabled": "yes"}, {"enabled": "must be true or false"}),
    (InstallCreate, {"extension_id": "echo", "config": {"A": 1, "bad key": "x"}},
     {"config.A": "must be a string", "config.bad key": "key must be 1-128 characters of A-Z a-z 0-9 . _ -"}),
    (InstallCreate, {"extension_id": "echo", "granted_capabilities": [""]},
     {"granted_capabilities[0]": "must be a non-empty string of at most 256 characters"}),
    (SecretsReplace, {"secrets": {"K": "v" * (64 * 1024 + 1)}}, {"secrets.K": "must be at most 65536 characters"}),
    (SecretsReplace, {}, {"secrets": "is required"}),
]


@pytest.mark.parametrize(("model", "body"), ACCEPTED)
def test_accepted_bodies_are_valid_against_the_schema(model: type, body: Any) -> None:
    parsed: object = parse_body(model, body)
    assert isinstance(parsed, model)
    assert Draft202012Validator(body_schema(model)).is_valid(body)


@pytest.mark.parametrize(("model", "body", "fields"), REFUSED)
def test_refused_bodies_are_invalid_against_the_schema(model: type, body: Any, fields: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_body(model, body)
    assert info.value.fields == fields
    assert not Draft202012Validator(body_schema(model)).is_valid(body)


def test_parsed_values_are_typed() -> None:
    body = parse_body(SecretsReplace, {"secrets": {"K": "v"}, "expires_at": "2030-01-01T00:00:00+02:00"})
    assert body.expires_at == datetime(2029, 12, 31, 22, tzinfo=UTC)
    install = parse_body(InstallCreate, {"extension_id": "echo"})
    assert (install.version_id, install.granted_capabilities, install.config, install.enabled) == (None,) * 4


def test_plaintext_stays_out_of_reprs() -> None:
    assert "s3cret" not in repr(parse_body(SecretsReplace, {"secrets": {"K": "s3cret"}}))
    assert "agt_s3cret" not in repr(parse_body(SessionCreate, {"token": "agt_s3cret"}))


def test_every_body_is_in_the_openapi_document_by_reference() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    for model in BODIES:
        assert schemas[model.__name__] == body_schema(model)
    referenced = {
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for item in document["paths"].values() for op in item.values() if "requestBody" in op
    }
    assert referenced == {model.__name__ for model in BODIES}


def test_a_field_type_must_agree_with_its_rule() -> None:
    @dataclasses.dataclass(frozen=True)
    class OptionalButNotNullable:
        name: Annotated[str, Text()]

    @dataclasses.dataclass(frozen=True)
    class RequiredButNullable:
        name: Annotated[str | None, Text(required=True)]

    @dataclasses.dataclass(frozen=True)
    class NoRule:
        name: str

    for model in (OptionalButNotNullable, RequiredButNullable, NoRule):
        with pytest.raises(TypeError):
            body_fields(model)
