"""Process-wide defaults for module handles, like ``dspy.configure``: set them once at start-up.

    import dspy_grpc

    dspy_grpc.configure(client=dspy_grpc.Client("127.0.0.1:50051"), lm="gpt-4o-mini")
    qa = dspy_grpc.Predict("question -> answer")      # uses the configured client and LM
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["configure", "settings"]


@dataclass
class Settings:
    client: Any = None
    """The default blocking :class:`~dspy_grpc.Client` (used by ``module(...)``)."""
    async_client: Any = None
    """The default :class:`~dspy_grpc.AsyncClient` (used by ``await module.acall(...)``)."""
    lm: Any = None
    """The default LM of every call, for predictors that name none (sent as the request's ``lm``)."""


settings = Settings()

_UNSET: Any = object()


def configure(*, client: Any = _UNSET, lm: Any = _UNSET) -> None:
    """Set the defaults that module handles use when they are given no ``client=`` / ``lm=``.

    ``client`` is a :class:`~dspy_grpc.Client` (the default for blocking calls) or an
    :class:`~dspy_grpc.AsyncClient` (the default for ``acall``); configure both by calling twice.
    ``client=None`` clears both. ``lm`` is anything ``lm=`` accepts (``None`` clears it).
    """

    from .client import AsyncClient, Client

    if client is not _UNSET:
        if client is None:
            settings.client = settings.async_client = None
        elif isinstance(client, AsyncClient):
            settings.async_client = client
        elif isinstance(client, Client):
            settings.client = client
        else:
            raise TypeError(f"client must be a dspy_grpc.Client or AsyncClient, not {type(client).__name__}")
    if lm is not _UNSET:
        settings.lm = lm
