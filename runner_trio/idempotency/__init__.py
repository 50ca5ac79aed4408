"""Idempotency of keyed invocations: at most once per (tenant, extension, key), across runners and restarts.

``IdempotencyCache`` is the single flight and memo of this process; given a ``RecordStore`` (``SqliteRecords``,
``RedisRecords`` or ``PostgresRecords``, built from ``RUNNER_IDEMPOTENCY_URL`` by ``open_records``) it claims
each key in the shared store before the guest runs and replays the stored result on a retry anywhere.
"""

from ._cache import DEFAULT_CLAIM_MARGIN, DEFAULT_MAX_ENTRIES, DEFAULT_TTL, Codec, IdempotencyCache
from ._errors import IdempotencyError, KeyAbandoned, KeyInProgress, KeyReused, StoreUnavailable
from ._fingerprint import request_fingerprint
from ._open import open_records
from ._postgres import PostgresRecords
from ._records import Claimed, Done, Held, RecordKey, RecordStore
from ._redis import RedisRecords
from ._sqlite import SqliteRecords

__all__ = [
    "DEFAULT_CLAIM_MARGIN",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TTL",
    "Claimed",
    "Codec",
    "Done",
    "Held",
    "IdempotencyCache",
    "IdempotencyError",
    "KeyAbandoned",
    "KeyInProgress",
    "KeyReused",
    "PostgresRecords",
    "RecordKey",
    "RecordStore",
    "RedisRecords",
    "SqliteRecords",
    "StoreUnavailable",
    "open_records",
    "request_fingerprint",
]
