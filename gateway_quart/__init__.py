"""The API gateway: registry and install flow, auth and RBAC, the ``/api/ext`` proxy to runners, the UI gate.

Run it with ``python -m gateway_quart`` (settings from the environment, see :meth:`Settings.from_env`), or in
a nursery like the runner::

    binds = await nursery.start(serve, Settings.from_env())   # Hypercorn's trio worker, SIGTERM drains

or build the app with :func:`create_app` and serve it yourself.
"""

from ._app import create_app, serve
from ._auth import (
    PERMISSION_ADMIN,
    PERMISSION_READ,
    PERMISSION_WRITE,
    ROLE_PERMISSIONS,
    SESSION_COOKIE,
    TOKEN_PREFIX,
    Principal,
    generate_token,
    hash_token,
)
from ._errors import (
    ApiError,
    Conflict,
    Forbidden,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RecordConflict,
    RecordNotFound,
    RegistryError,
    SettingsError,
    Unauthorized,
    UpstreamError,
)
from ._headers import FORWARDED_REQUEST_HEADERS, RESPONSE_HEADERS, SECURITY_HEADERS
from ._openapi import openapi_document
from ._ratelimit import TokenBucketLimiter
from ._runner_client import RunnerClient, RunnerResult
from ._settings import ENV_VARS, Settings, load_settings

__all__ = [
    "ENV_VARS",
    "FORWARDED_REQUEST_HEADERS",
    "PERMISSION_ADMIN",
    "PERMISSION_READ",
    "PERMISSION_WRITE",
    "RESPONSE_HEADERS",
    "ROLE_PERMISSIONS",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "TOKEN_PREFIX",
    "ApiError",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "Principal",
    "QuotaExceeded",
    "RateLimited",
    "RecordConflict",
    "RecordNotFound",
    "RegistryError",
    "RunnerClient",
    "RunnerResult",
    "Settings",
    "SettingsError",
    "TokenBucketLimiter",
    "Unauthorized",
    "UpstreamError",
    "create_app",
    "generate_token",
    "hash_token",
    "load_settings",
    "openapi_document",
    "serve",
]
