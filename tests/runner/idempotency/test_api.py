"""The idempotency package's public names."""

import runner_trio.idempotency


def test_public_names() -> None:
    assert sorted(runner_trio.idempotency.__all__) == [
        "Claimed", "Codec", "DEFAULT_CLAIM_MARGIN", "DEFAULT_MAX_ENTRIES", "DEFAULT_TTL", "Done", "Held",
        "IdempotencyCache", "IdempotencyError", "KeyAbandoned", "KeyInProgress", "KeyReused", "PostgresRecords",
        "RecordKey", "RecordStore", "RedisRecords", "SqliteRecords", "StoreUnavailable", "open_records",
        "request_fingerprint",
    ]
