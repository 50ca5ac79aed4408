"""Fixtures every test directory may use: a real PostgreSQL server (one per session, started on first use)
and a fresh database on it per test (``tests/_postgres.py``), and a real Redis (``tests/_redis.py``)."""

from tests._postgres import postgres_server, postgres_url  # noqa: F401 - the fixtures, shared with every directory
from tests._redis import redis_server  # noqa: F401 - one session server for every directory
