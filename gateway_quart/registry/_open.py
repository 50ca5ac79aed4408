"""``REGISTRY_DATABASE`` to a registry: a SQLite file (a path or ``sqlite:///path``) or PostgreSQL."""

from __future__ import annotations

import urllib.parse

from servicekit import POSTGRES_SCHEMES, url_scheme

from .._errors import RegistryError
from ._postgres import PostgresRegistry
from ._protocol import Registry
from ._sqlite import SqliteRegistry


async def open_registry(database: str) -> Registry:
    """Open (and migrate) the registry that ``database`` names.

    Args:
        database: a file path, ``sqlite:///relative/path``, ``sqlite:////absolute/path``, or
            ``postgresql://user[:password]@host[:port]/dbname`` (libpq's URL; ``postgres://`` too).

    Raises:
        RegistryError: another scheme, or the database cannot be opened or migrated.
    """
    scheme = url_scheme(database)
    if scheme is None:
        return await SqliteRegistry.open(database)
    if scheme == "sqlite":
        path = urllib.parse.unquote(database[len("sqlite:///"):]) if database.startswith("sqlite:///") else ""
        if not path:
            raise RegistryError("expected sqlite:///path")
        return await SqliteRegistry.open(path)
    if scheme in POSTGRES_SCHEMES:
        return await PostgresRegistry.open(database)
    raise RegistryError(f"unsupported registry database scheme {scheme!r}: expected a path, sqlite:// or postgresql://")
