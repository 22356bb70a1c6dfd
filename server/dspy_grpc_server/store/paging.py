"""Page-size and page-token helpers shared by every store's ``list`` methods (AIP-158).

* ``page_size`` 0 means :data:`DEFAULT_PAGE_SIZE`; values above :data:`MAX_PAGE_SIZE` are clamped;
  negative values are rejected with ``InvalidArgument`` on field ``page_size``.
* Page tokens are opaque to callers: URL-safe base64 of a small JSON object holding a ``scope``
  (which listing the token belongs to) and a ``cursor`` (the keyset position after the last item
  returned). A token that cannot be decoded, or that belongs to another listing, is rejected with
  ``InvalidArgument`` on field ``page_token``. The empty token means "first page"; a listing returns
  the empty token when there are no further pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from dspy_grpc_server.core.errors import invalid

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def normalize_page_size(
    page_size: int,
    *,
    field: str = "page_size",
    default: int = DEFAULT_PAGE_SIZE,
    maximum: int = MAX_PAGE_SIZE,
) -> int:
    """Return the effective page size: 0 -> ``default``, above ``maximum`` -> ``maximum``."""

    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise invalid(field, "must be an integer")
    if page_size < 0:
        raise invalid(field, f"must not be negative (got {page_size})")
    if page_size == 0:
        return default
    return min(page_size, maximum)


def encode_page_token(scope: str, cursor: Any) -> str:
    """Encode a keyset ``cursor`` (any JSON value) for the listing named ``scope``."""

    payload = json.dumps({"s": scope, "c": cursor}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii").rstrip("=")


def decode_page_token(token: str, scope: str, *, field: str = "page_token") -> Any:
    """Return the cursor stored in ``token``, or ``None`` for the empty token (first page).

    Raises ``InvalidArgument`` on ``field`` if the token is malformed or was issued for a
    different ``scope`` (another listing, or the same listing under another parent).
    """

    if not token:
        return None
    if not isinstance(token, str):
        raise invalid(field, "must be a string")
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError):
        raise invalid(field, "is not a page token returned by this listing") from None
    if not isinstance(payload, dict) or payload.get("s") != scope or "c" not in payload:
        raise invalid(field, "is not a page token returned by this listing")
    return payload["c"]
