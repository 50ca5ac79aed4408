"""Errors of the contract's codecs and grammars.

The tree::

    ContractError (ValueError)     base; ``code`` is the wire error code a service answers it with
    ├── InvalidField               a field is missing or has the wrong type; ``field`` is its dotted JSON path
    │   └── InvalidBase64          a ``*_b64`` field is not base64
    ├── UnknownCapabilities        ``providers`` names capabilities that do not exist (``names``, sorted)
    ├── BodyTooLarge               ``http.body_b64`` decodes to more than the caller's cap
    └── InvalidStreamKey           a Redis key is not ``<prefix><tenant>:<extension>``

A content hash that does not parse raises ``bundles.ContentHashError`` (re-exported here): the bundle format
owns that grammar. Services translate these at their boundary (the runner into ``RequestInvalid`` and friends,
the gateway into ``UpstreamError``); none of them crosses a service's API as is.
"""

from __future__ import annotations

from typing import ClassVar

from ._codes import ErrorCode

__all__ = [
    "BodyTooLarge",
    "ContractError",
    "InvalidBase64",
    "InvalidField",
    "InvalidStreamKey",
    "UnknownCapabilities",
]


class ContractError(ValueError):
    """Base of the contract's errors."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(ContractError):
    """A document does not follow the contract. ``field`` is a dotted path into the JSON (``$`` is the root)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidBase64(InvalidField):
    """A ``*_b64`` field holds a string that is not base64."""


class UnknownCapabilities(ContractError):
    """``providers`` names capabilities the runner does not know; ``names`` lists them, sorted."""

    code = ErrorCode.UNKNOWN_CAPABILITIES

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class BodyTooLarge(ContractError):
    """The request body decodes (or would decode) to more bytes than the caller allows."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class InvalidStreamKey(ContractError):
    """A Redis key is not a debug stream's ``<prefix><tenant>:<extension>``."""
