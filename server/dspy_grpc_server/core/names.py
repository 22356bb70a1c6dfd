"""Validators for the ids inside resource names such as ``programs/{program_id}``.

Resource ids follow AIP-122: they start with a lowercase letter, continue with lowercase letters,
digits or hyphens, and are at most 63 characters long (so they fit a DNS label). Every validator
raises :class:`~dspy_grpc_server.core.errors.InvalidArgument` naming the offending request field.
"""

from __future__ import annotations

import re

from dspy_grpc_server.core.errors import invalid

#: The shape of every user-chosen resource id (programs, datasets, ...).
RESOURCE_ID_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,62}")

#: Human-readable form of :data:`RESOURCE_ID_PATTERN`, used in error messages.
RESOURCE_ID_RULE = (
    "must be 1-63 characters: a lowercase letter followed by lowercase letters, digits or '-'"
)


def is_valid_resource_id(value: object) -> bool:
    """Return True when ``value`` is a string matching ``^[a-z][a-z0-9-]{0,62}$``."""

    return isinstance(value, str) and RESOURCE_ID_PATTERN.fullmatch(value) is not None


def validate_resource_id(value: object, *, field: str) -> str:
    """Return ``value`` unchanged if it is a valid resource id, else raise ``InvalidArgument``.

    ``field`` is the request field reported in the violation (e.g. ``"program_id"``).
    """

    if not isinstance(value, str) or not value:
        raise invalid(field, "is required")
    if RESOURCE_ID_PATTERN.fullmatch(value) is None:
        raise invalid(field, f"{value!r} {RESOURCE_ID_RULE}")
    return value


def validate_program_id(value: object, *, field: str = "program_id") -> str:
    """Validate the ``{program_id}`` of ``programs/{program_id}``; see :func:`validate_resource_id`."""

    return validate_resource_id(value, field=field)


def validate_dataset_id(value: object, *, field: str = "dataset_id") -> str:
    """Validate the ``{dataset_id}`` of ``datasets/{dataset_id}``; see :func:`validate_resource_id`."""

    return validate_resource_id(value, field=field)
