"""Journal keys: AES-256-GCM keys with a key id, parsed from one setting (``kid1:<base64>,kid0:<base64>``).

The first key seals new entries; every key opens entries. Rotation is therefore two deploys: put the new key
first (runners and gateways open old entries with the second one), then drop the old key once the retention
period has passed. Only runners and the gateway hold the setting; nothing here ever prints key bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, final

from ._errors import JournalKeyError

__all__ = ["KEY_BYTES", "KEY_ID_PATTERN", "JournalKey", "JournalKeyring"]

KEY_BYTES: Final = 32
"""AES-256: a key is 32 random bytes."""
KEY_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""A key id: short, printable, and free of the setting's ``:`` and ``,`` separators (it is stored in every
entry's header, so it stays under 33 bytes)."""


@dataclass(frozen=True)
class JournalKey:
    """One symmetric key and the id entries sealed with it carry in their header."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not KEY_ID_PATTERN.fullmatch(self.key_id):
            raise JournalKeyError(
                f"journal key id {str(self.key_id)[:40]!r} must be 1-32 characters of A-Z a-z 0-9 _ -"
            )
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_BYTES:
            raise JournalKeyError(f"journal key {self.key_id!r} must be {KEY_BYTES} bytes")


@final
class JournalKeyring:
    """The keys a service holds: ``primary`` (the first) seals, any of them opens.

    Args:
        keys: at least one key; key ids must be distinct.

    Raises:
        JournalKeyError: no keys, or a key id appears twice.
    """

    def __init__(self, keys: Iterable[JournalKey]) -> None:
        self._keys: dict[str, JournalKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise JournalKeyError(f"journal key id {key.key_id!r} appears twice")
            self._keys[key.key_id] = key
        if not self._keys:
            raise JournalKeyError("a journal keyring needs at least one key")
        self._primary = next(iter(self._keys.values()))

    def __repr__(self) -> str:
        return f"JournalKeyring(key_ids={self.key_ids!r})"

    def __iter__(self) -> Iterator[JournalKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def primary(self) -> JournalKey:
        """The key new entries are sealed with."""
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id, the primary first."""
        return tuple(self._keys)

    def get(self, key_id: str) -> JournalKey:
        """The key with this id.

        Raises:
            JournalKeyError: this keyring holds no such key (the entry was sealed by a key since retired, or by
                another deployment).
        """
        try:
            return self._keys[key_id]
        except KeyError:
            raise JournalKeyError(
                f"no journal key with id {key_id[:40]!r} (this keyring holds {', '.join(self._keys)})"
            ) from None

    @classmethod
    def parse(cls, text: str) -> JournalKeyring:
        """Read the setting form ``kid1:<base64 of 32 bytes>,kid0:<...>`` (spaces around items are ignored).

        Raises:
            JournalKeyError: the text is empty, an item is not ``id:base64``, a key is not 32 bytes of standard
                base64, or an id repeats. The message names the item by position and id, never its key bytes.
        """
        if not isinstance(text, str) or not text.strip():
            raise JournalKeyError("journal keys are empty: expected 'kid:<base64 of 32 bytes>[,kid:<...>]'")
        keys = []
        for position, item in enumerate(text.split(","), start=1):
            item = item.strip()
            key_id, sep, encoded = item.partition(":")
            key_id, encoded = key_id.strip(), encoded.strip()
            if not sep or not key_id or not encoded:
                raise JournalKeyError(f"journal key #{position} must be 'kid:<base64 of {KEY_BYTES} bytes>'")
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise JournalKeyError(
                    f"journal key #{position}: the id {key_id[:40]!r} must be 1-32 characters of A-Z a-z 0-9 _ -"
                )
            try:
                secret = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise JournalKeyError(f"journal key #{position} ({key_id}) is not valid base64") from None
            if len(secret) != KEY_BYTES:
                raise JournalKeyError(
                    f"journal key #{position} ({key_id}) is {len(secret)} bytes, expected {KEY_BYTES}"
                )
            keys.append(JournalKey(key_id, secret))
        return cls(keys)

    @staticmethod
    def generate(key_id: str | None = None) -> str:
        """A new key in the setting form (``k<8 hex>:<base64>``), for ``extctl`` and ``scripts/run``.

        Prepend it to an existing setting (``new,old``) to rotate.
        """
        kid = key_id if key_id is not None else "k" + secrets.token_hex(4)
        key = JournalKey(kid, secrets.token_bytes(KEY_BYTES))
        return f"{key.key_id}:{base64.b64encode(key.secret).decode('ascii')}"
