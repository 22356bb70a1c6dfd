"""API keys: creating, listing and revoking them, and verifying the key a call presents.

A key looks like ``dgk_<key_id>_<secret>``: ``key_id`` (12 hex digits) is public and names the
stored row; ``secret`` (43 URL-safe characters, 256 bits) is shown once at creation and stored only
as ``sha256(salt || secret)`` with a random 16-byte salt per key. Verification compares hashes in
constant time. Verified keys are remembered for ``cache_ttl_s`` seconds, so a revocation made by
another process (``dspy-grpc keys revoke``) takes effect within that time; one made through this
object takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from ..core.caller import SCOPES, Caller
from ..core.errors import Unauthenticated, invalid
from ..store.api_keys import ApiKeyRecord, ApiKeyStore
from ..store.database import Database

TOKEN_PREFIX = "dgk"
_TOKEN = re.compile(rf"{TOKEN_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{20,100}})")


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def parse_scopes(scopes: Iterable[str] | str, field: str = "scopes") -> tuple[str, ...]:
    """Validated, de-duplicated scopes (``"infer,programs"`` or a list)."""

    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    result: list[str] = []
    for item in (s.strip() for s in items):
        if item not in SCOPES:
            raise invalid(field, f"unknown scope {item!r}; expected some of: {', '.join(SCOPES)}")
        if item not in result:
            result.append(item)
    if not result:
        raise invalid(field, f"give at least one scope of: {', '.join(SCOPES)}")
    return tuple(result)


def _invalid_key() -> Unauthenticated:
    # One message for unknown, malformed and revoked keys: a caller learns nothing about which.
    return Unauthenticated("the API key is not valid", reason="API_KEY_INVALID")


class ApiKeys:
    def __init__(self, database: Database, *, cache_ttl_s: float = 5.0) -> None:
        self._store = ApiKeyStore(database)
        self._cache_ttl_s = cache_ttl_s
        self._verified: dict[str, tuple[Caller, float]] = {}

    async def create(self, name: str, scopes: Iterable[str] | str) -> tuple[ApiKeyRecord, str]:
        """A new key; returns its record and the full key (the only time the secret is available)."""

        name = name.strip()
        if not name or len(name) > 200:
            raise invalid("name", "give a name of 1 to 200 characters")
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
        record = ApiKeyRecord(key_id, name, parse_scopes(scopes), salt, hash_secret(salt, secret),
                              datetime.now(UTC))
        await self._store.insert(record)
        return record, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    async def list(self) -> list[ApiKeyRecord]:
        return await self._store.list()

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        record = await self._store.revoke(key_id)
        self._verified = {k: v for k, v in self._verified.items() if v[0].key_id != key_id}
        return record

    async def authenticate(self, token: str) -> Caller:
        """The caller a presented key belongs to; :class:`Unauthenticated` unless it is valid."""

        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._verified.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise _invalid_key()
        key_id, secret = match.groups()
        record = await self._store.get(key_id)
        if record is None or record.revoked or not hmac.compare_digest(
            hash_secret(record.salt, secret), record.secret_hash
        ):
            self._verified.pop(digest, None)
            raise _invalid_key()
        caller = Caller(record.key_id, record.name, frozenset(record.scopes))
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[digest] = (caller, now + self._cache_ttl_s)
        return caller
