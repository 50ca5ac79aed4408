from tests._redis import redis_server  # noqa: F401 - the session fixture, shared with this directory
