"""Who is calling: API tokens, session cookies, roles and permissions, the admin token.

API tokens are random ``agt_…`` strings shown once; the registry keeps only their SHA-256. A session is a
signed cookie naming a token id, so revoking the token ends every session made from it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ._errors import Forbidden, Unauthorized
from ._headers import HeaderLookup
from .registry import ApiToken, Registry, User

TOKEN_PREFIX: Final = "agt_"  # noqa: S105 - a prefix, not a secret
SESSION_COOKIE: Final = "alga_session"
_SESSION_SALT: Final = "alga-gateway-session:v1"
_MAX_TOKEN_LENGTH: Final = 256

PERMISSION_READ: Final = "extension:read"
PERMISSION_WRITE: Final = "extension:write"
PERMISSION_ADMIN: Final = "extension:admin"

ROLE_PERMISSIONS: Final[Mapping[str, frozenset[str]]] = {
    "viewer": frozenset({PERMISSION_READ}),
    "member": frozenset({PERMISSION_READ, PERMISSION_WRITE}),
    "admin": frozenset({PERMISSION_READ, PERMISSION_WRITE, PERMISSION_ADMIN}),
}
"""Roles a user can hold, and the permissions each grants."""

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """An authenticated user, with the tenant every request of theirs is confined to."""

    user: User
    token_id: str
    permissions: frozenset[str]
    via: str
    """``"token"`` (bearer header) or ``"session"`` (cookie)."""

    @property
    def tenant_id(self) -> str:
        return self.user.tenant_id

    def require(self, permission: str) -> None:
        """Raise ``Forbidden`` unless the principal holds ``permission``."""
        if permission not in self.permissions:
            raise Forbidden("forbidden", f"missing permission {permission}", extra={"permission": permission})


def generate_token() -> str:
    """A new random API token (shown to its owner once)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: the only form the registry stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def token_is_live(token: ApiToken, *, now: datetime | None = None) -> bool:
    """False for revoked or expired tokens."""
    if token.revoked_at is not None:
        return False
    if token.expires_at is None:
        return True
    current = now or datetime.now(UTC)
    return current < datetime.fromisoformat(token.expires_at)


def bearer_token(headers: HeaderLookup) -> str | None:
    """The bearer credential of an ``Authorization`` header, if any."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("invalid_token", "Authorization must be 'Bearer <token>'")
    return credential.strip()


def admin_token_matches(presented: str | None, expected: str | None) -> bool:
    if presented is None or expected is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


class SessionSigner:
    """Signs and checks session cookies (itsdangerous, HMAC-SHA1 over a timestamped payload)."""

    def __init__(self, secret: str, *, ttl_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SESSION_SALT)
        self.ttl_s = ttl_s

    def issue(self, token_id: str) -> str:
        return self._serializer.dumps({"tid": token_id})

    def token_id(self, cookie: str) -> str | None:
        """The token id a cookie was issued for, or ``None`` when forged, malformed or older than the TTL."""
        try:
            data = self._serializer.loads(cookie, max_age=self.ttl_s)
        except BadSignature:  # SignatureExpired is a subclass
            return None
        token_id = data.get("tid") if isinstance(data, dict) else None
        return token_id if isinstance(token_id, str) else None


async def principal_for_token(registry: Registry, token: str) -> Principal:
    """Resolve a bearer token.

    Raises:
        Unauthorized: unknown, revoked or expired token.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid_token", "unknown, revoked or expired token")
    found = await registry.find_token(hash_token(token))
    if found is None or not token_is_live(found[0]):
        raise Unauthorized("invalid_token", "unknown, revoked or expired token")
    token_record, user = found
    return Principal(user, token_record.id, permissions_for(user.roles), "token")


async def authenticate(
    registry: Registry,
    signer: SessionSigner,
    headers: HeaderLookup,
    cookies: Mapping[str, str],
) -> Principal:
    """Find the caller from a bearer token, else from the session cookie.

    Raises:
        Unauthorized: no credential, or one that does not resolve to a live token.
    """
    token = bearer_token(headers)
    if token is not None:
        return await principal_for_token(registry, token)
    cookie = cookies.get(SESSION_COOKIE)
    if cookie:
        token_id = signer.token_id(cookie)
        found = await registry.find_token_by_id(token_id) if token_id is not None else None
        if found is None or not token_is_live(found[0]):
            raise Unauthorized("session_expired", "the session is invalid or has expired")
        token_record, user = found
        return Principal(user, token_record.id, permissions_for(user.roles), "session")
    raise Unauthorized("unauthorized", "a bearer token or a session is required")


def check_origin(
    *, method: str, principal: Principal, origin: str | None, own_origin: Callable[[], str], allowed: Iterable[str]
) -> None:
    """Refuse cross-site state changes made with a session cookie (CSRF).

    A cookie rides along on any request a browser makes, so a non-safe request authenticated by it must come
    from the gateway's own origin (``own_origin()``, asked only then: werkzeug builds it from the request) or an
    allowed one. Bearer tokens are never sent implicitly and need no check.

    Raises:
        Forbidden: ``origin_not_allowed``.
    """
    if principal.via != "session" or method in SAFE_METHODS or origin is None:
        return
    normalized = origin.rstrip("/").lower()
    if normalized != own_origin().lower() and normalized not in allowed:
        raise Forbidden("origin_not_allowed", "cross-origin request with a session cookie refused")
