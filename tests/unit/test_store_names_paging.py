"""Resource-id validation (core/names.py) and the paging helpers every store shares (store/paging.py)."""

from __future__ import annotations

import base64

import pytest

from dspy_grpc_server.core.errors import InvalidArgument
from dspy_grpc_server.core.names import is_valid_resource_id, validate_program_id
from dspy_grpc_server.store.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_page_token,
    encode_page_token,
    normalize_page_size,
)


@pytest.mark.parametrize("value", ["a", "qa", "rag-v2", "a" * 63, "x0-"])
def test_valid_program_ids_are_returned_unchanged(value: str) -> None:
    assert validate_program_id(value) == value
    assert is_valid_resource_id(value)


@pytest.mark.parametrize(
    "value", ["", "Qa", "1qa", "-qa", "q_a", "q a", "a" * 64, "qa\n", "qä", None, 7]
)
def test_invalid_program_ids_name_the_field(value: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_program_id(value)
    assert [v.field for v in caught.value.violations] == ["program_id"]
    assert not is_valid_resource_id(value)


def test_the_reported_field_can_be_renamed() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_program_id("Bad", field="program.name")
    assert caught.value.violations[0].field == "program.name"


@pytest.mark.parametrize(
    ("given", "effective"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (50, 50), (MAX_PAGE_SIZE, MAX_PAGE_SIZE), (10**6, MAX_PAGE_SIZE)],
)
def test_page_size_defaults_and_clamps(given: int, effective: int) -> None:
    assert normalize_page_size(given) == effective


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        normalize_page_size(-1)
    assert caught.value.violations[0].field == "page_size"


def test_page_token_round_trips_within_its_scope() -> None:
    token = encode_page_token("programs", "qa")
    assert token and "=" not in token
    assert decode_page_token(token, "programs") == "qa"
    assert decode_page_token("", "programs") is None


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "!!!!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"s": "programs"}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        encode_page_token("programs/qa/revisions", 3),
    ],
)
def test_foreign_or_malformed_page_tokens_are_invalid(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, "programs")
    assert caught.value.violations[0].field == "page_token"
