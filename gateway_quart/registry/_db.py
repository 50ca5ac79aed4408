"""The small database interface the repository code is written against (see ``_repository.py``).

Both backends adapt their driver's connection to it: ``execute`` takes SQL with ``?`` placeholders (the
PostgreSQL adapter turns them into psycopg's ``%s``) and returns a cursor; ``write()`` is one transaction
that holds the database's write lock for its whole body, so a read-then-write step sees what it changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def write(self) -> AbstractContextManager[None]: ...
