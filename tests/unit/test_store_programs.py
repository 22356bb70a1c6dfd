"""ProgramStore against real databases: SQLite files in tmp_path, and a fresh database on a private
PostgreSQL server (the ``postgres_url`` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from dspy_grpc_server.core.errors import (
    Aborted,
    AlreadyExists,
    DspyGrpcError,
    InvalidArgument,
    NotFound,
)
from dspy_grpc_server.store import Database, ProgramRecord, ProgramStore
from dspy_grpc_server.store.programs import format_revision_id, parse_revision_id
from dspy_grpc_server.store.schema import program_revisions, programs

SPEC = {"module": "Predict", "signature": "question -> answer", "demos": [{"q": 1}]}


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'store.db'}")
    else:
        database = await Database.open(request.getfixturevalue("postgres_url"))
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def store(db: Database) -> ProgramStore:
    return ProgramStore(db)


async def _row_counts(db: Database) -> tuple[int, int]:
    async with db.sessions() as session:
        n_programs = await session.scalar(select(func.count()).select_from(programs))
        n_revisions = await session.scalar(select(func.count()).select_from(program_revisions))
    return n_programs, n_revisions


async def _create(store: ProgramStore, program_id: str = "qa", **overrides: object) -> ProgramRecord:
    fields: dict[str, object] = {
        "display_name": "Q&A",
        "description": "answers questions",
        "labels": {"team": "search"},
        "spec": SPEC,
    }
    fields.update(overrides)
    return await store.create(program_id, **fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- create / get


async def test_create_returns_the_first_revision_and_get_reads_it_back(store: ProgramStore) -> None:
    created = await _create(store)
    assert created.program_id == "qa"
    assert created.name == "programs/qa"
    assert created.revision_id == created.active_revision_id == "r0001"
    assert created.create_time == created.update_time == created.revision_create_time
    assert created.create_time.tzinfo is UTC
    assert created.etag

    fetched = await store.get("qa")
    assert fetched == created
    assert dict(fetched.spec) == SPEC
    assert dict(fetched.labels) == {"team": "search"}
    assert await store.get("qa", "r0001") == created


async def test_create_rejects_a_taken_id_and_keeps_the_original(
    db: Database, store: ProgramStore
) -> None:
    original = await _create(store)
    with pytest.raises(AlreadyExists) as caught:
        await _create(store, display_name="impostor")
    assert caught.value.reason == "PROGRAM_EXISTS"
    assert await store.get("qa") == original
    assert await _row_counts(db) == (1, 1)


@pytest.mark.parametrize(
    ("program_id", "overrides", "field"),
    [
        ("Bad_Id", {}, "program_id"),
        ("qa", {"spec": {"x": {1, 2}}}, "spec"),
        ("qa", {"spec": {"x": float("nan")}}, "spec"),
        ("qa", {"spec": ["not", "an", "object"]}, "spec"),
        ("qa", {"labels": {"team": 3}}, "labels.team"),
        ("qa", {"display_name": None}, "display_name"),
    ],
)
async def test_create_rejects_bad_input_naming_the_field_and_writes_nothing(
    db: Database, store: ProgramStore, program_id: str, overrides: dict, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await _create(store, program_id, **overrides)
    assert [v.field for v in caught.value.violations] == [field]
    assert await _row_counts(db) == (0, 0)


async def test_create_is_atomic_when_the_revision_cannot_be_written(
    db: Database, store: ProgramStore
) -> None:
    # A real database failure after the program row was inserted, before commit.
    async with db.sessions() as session, session.begin():
        if db.dialect == "sqlite":
            await session.execute(
                text(
                    "CREATE TRIGGER refuse_revisions BEFORE INSERT ON program_revisions "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            await session.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"
                )
            )
            await session.execute(
                text(
                    "CREATE TRIGGER refuse_revisions BEFORE INSERT ON program_revisions "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    try:
        with pytest.raises(Exception) as caught:
            await _create(store)
        assert not isinstance(caught.value, AlreadyExists)
        assert await _row_counts(db) == (0, 0)
        with pytest.raises(NotFound):
            await store.get("qa")
    finally:
        async with db.sessions() as session, session.begin():
            await session.execute(text("DROP TRIGGER refuse_revisions" + (
                "" if db.dialect == "sqlite" else " ON program_revisions"
            )))
            if db.dialect != "sqlite":
                await session.execute(text("DROP FUNCTION refuse()"))
    assert (await _create(store)).revision_id == "r0001"


async def test_get_distinguishes_missing_programs_and_revisions(store: ProgramStore) -> None:
    with pytest.raises(NotFound) as missing_program:
        await store.get("nope")
    assert missing_program.value.reason == "PROGRAM_NOT_FOUND"
    assert missing_program.value.metadata == {"program_id": "nope"}

    await _create(store)
    with pytest.raises(NotFound) as missing_revision:
        await store.get("qa", "r0002")
    assert missing_revision.value.reason == "REVISION_NOT_FOUND"

    with pytest.raises(InvalidArgument) as malformed:
        await store.get("qa", "latest")
    assert malformed.value.violations[0].field == "revision_id"
    with pytest.raises(InvalidArgument) as bad_id:
        await store.get("QA")
    assert bad_id.value.violations[0].field == "program_id"


@pytest.mark.parametrize(("number", "revision_id"), [(1, "r0001"), (42, "r0042"), (12345, "r12345")])
def test_revision_ids_round_trip(number: int, revision_id: str) -> None:
    assert format_revision_id(number) == revision_id
    assert parse_revision_id(revision_id) == number


@pytest.mark.parametrize("revision_id", ["r0000", "r1", "r00001", "0001", "R0001", "r00a1", ""])
def test_malformed_revision_ids_are_invalid(revision_id: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_revision_id(revision_id)


# ---------------------------------------------------------------------------------- list


async def test_list_pages_through_programs_in_id_order(store: ProgramStore) -> None:
    ids = [f"p-{i:02d}" for i in range(7)]
    for program_id in reversed(ids):
        await _create(store, program_id)

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page, token = await store.list(page_size=3, page_token=token)
        pages += 1
        seen.extend(record.program_id for record in page)
        assert len(page) <= 3
        if not token:
            break
    assert seen == ids
    assert pages == 3

    everything, last = await store.list(page_size=0, page_token="")
    assert [r.program_id for r in everything] == ids and last == ""


async def test_list_of_an_empty_store_is_empty(store: ProgramStore) -> None:
    assert await store.list(page_size=10, page_token="") == ([], "")


async def test_list_shows_the_active_revision(store: ProgramStore) -> None:
    await _create(store)
    updated = await store.update("qa", description="v2")
    page, _ = await store.list(page_size=10, page_token="")
    assert page == [updated]


async def test_list_rejects_bad_paging_arguments(store: ProgramStore) -> None:
    with pytest.raises(InvalidArgument) as size:
        await store.list(page_size=-1, page_token="")
    assert size.value.violations[0].field == "page_size"
    with pytest.raises(InvalidArgument) as token:
        await store.list(page_size=1, page_token="garbage")
    assert token.value.violations[0].field == "page_token"


# ---------------------------------------------------------------------------------- update / revisions


async def test_update_writes_a_new_revision_copying_unchanged_parts(store: ProgramStore) -> None:
    first = await _create(store)
    second = await store.update("qa", description="better answers", etag=first.etag)
    assert second.revision_id == second.active_revision_id == "r0002"
    assert second.description == "better answers"
    assert second.display_name == first.display_name
    assert dict(second.labels) == dict(first.labels)
    assert dict(second.spec) == SPEC
    assert second.etag != first.etag
    assert second.create_time == first.create_time
    assert second.update_time >= first.update_time

    new_spec = {"module": "ChainOfThought", "signature": "question -> answer"}
    third = await store.update("qa", spec=new_spec, labels={})
    assert third.revision_id == "r0003"
    assert dict(third.spec) == new_spec and dict(third.labels) == {}
    assert third.description == "better answers"

    # Old revisions are immutable and still readable.
    old = await store.get("qa", "r0001")
    assert old.description == "answers questions" and dict(old.spec) == SPEC
    assert old.active_revision_id == "r0003"
    assert old.etag != third.etag
    assert await store.get("qa") == third
    assert await store.get("qa", "r0003") == third


async def test_update_with_a_stale_etag_is_aborted(store: ProgramStore) -> None:
    first = await _create(store)
    await store.update("qa", description="v2", etag=first.etag)
    with pytest.raises(Aborted) as caught:
        await store.update("qa", description="v3", etag=first.etag)
    assert caught.value.reason == "ETAG_MISMATCH"
    # The etag of an old revision is never the program's etag either.
    old = await store.get("qa", "r0001")
    with pytest.raises(Aborted):
        await store.update("qa", description="v3", etag=old.etag)
    assert (await store.get("qa")).revision_id == "r0002"


async def test_update_of_a_missing_program_is_not_found(store: ProgramStore) -> None:
    with pytest.raises(NotFound) as caught:
        await store.update("ghost", description="x")
    assert caught.value.reason == "PROGRAM_NOT_FOUND"


async def test_update_rejects_bad_input_and_writes_nothing(db: Database, store: ProgramStore) -> None:
    await _create(store)
    with pytest.raises(InvalidArgument) as caught:
        await store.update("qa", spec={"bad": object()})
    assert caught.value.violations[0].field == "spec"
    assert await _row_counts(db) == (1, 1)


async def test_list_revisions_pages_newest_first(store: ProgramStore) -> None:
    await _create(store)
    for i in range(4):
        await store.update("qa", description=f"v{i + 2}")

    first_page, token = await store.list_revisions("qa", page_size=2, page_token="")
    assert [r.revision_id for r in first_page] == ["r0005", "r0004"]
    assert token
    second_page, token = await store.list_revisions("qa", page_size=2, page_token=token)
    assert [r.revision_id for r in second_page] == ["r0003", "r0002"]
    last_page, token = await store.list_revisions("qa", page_size=2, page_token=token)
    assert [r.revision_id for r in last_page] == ["r0001"]
    assert token == ""
    assert last_page[0].description == "answers questions"
    assert all(r.active_revision_id == "r0005" for r in first_page + second_page + last_page)
    assert first_page[0] == await store.get("qa")


async def test_list_revisions_checks_program_and_token(store: ProgramStore) -> None:
    with pytest.raises(NotFound):
        await store.list_revisions("ghost", page_size=0, page_token="")
    await _create(store)
    await _create(store, "other")
    for _ in range(2):
        await store.update("other", description="again")
    _, other_token = await store.list_revisions("other", page_size=1, page_token="")
    with pytest.raises(InvalidArgument) as caught:
        await store.list_revisions("qa", page_size=1, page_token=other_token)
    assert caught.value.violations[0].field == "page_token"
    _, programs_token = await store.list(page_size=1, page_token="")
    with pytest.raises(InvalidArgument):
        await store.list_revisions("qa", page_size=1, page_token=programs_token)


# ---------------------------------------------------------------------------------- delete


async def test_delete_removes_the_program_and_its_revisions(db: Database, store: ProgramStore) -> None:
    await _create(store)
    await store.update("qa", description="v2")
    await _create(store, "keep")
    await store.delete("qa")
    assert await _row_counts(db) == (1, 1)
    with pytest.raises(NotFound):
        await store.get("qa")
    with pytest.raises(NotFound):
        await store.delete("qa")
    # The id is free again and starts over at r0001.
    assert (await _create(store)).revision_id == "r0001"


async def test_delete_with_a_stale_etag_is_aborted_and_keeps_everything(
    db: Database, store: ProgramStore
) -> None:
    first = await _create(store)
    second = await store.update("qa", description="v2")
    with pytest.raises(Aborted) as caught:
        await store.delete("qa", etag=first.etag)
    assert caught.value.reason == "ETAG_MISMATCH"
    assert await _row_counts(db) == (1, 2)
    await store.delete("qa", etag=second.etag)
    assert await _row_counts(db) == (0, 0)


# ---------------------------------------------------------------------------------- concurrency


async def test_concurrent_blind_updates_all_land_as_distinct_revisions(
    db: Database, store: ProgramStore
) -> None:
    await _create(store)
    results = await asyncio.gather(
        *(store.update("qa", description=f"writer {i}") for i in range(12)),
        return_exceptions=True,
    )
    landed = [r for r in results if isinstance(r, ProgramRecord)]
    failed = [r for r in results if not isinstance(r, ProgramRecord)]
    assert all(isinstance(f, Aborted) for f in failed), failed
    assert len(landed) >= 1
    revision_ids = [r.revision_id for r in landed]
    assert len(set(revision_ids)) == len(revision_ids)

    stored, _ = await store.list_revisions("qa", page_size=100, page_token="")
    assert len(stored) == 1 + len(landed)
    assert sorted(r.revision_id for r in stored) == [format_revision_id(n) for n in range(1, len(stored) + 1)]
    # Each landed update is stored exactly as returned.
    by_id = {r.revision_id: r.description for r in stored}
    assert all(by_id[r.revision_id] == r.description for r in landed)
    assert (await store.get("qa")).revision_id == max(revision_ids)


async def test_concurrent_updates_with_the_same_etag_let_exactly_one_win(
    store: ProgramStore,
) -> None:
    first = await _create(store)
    results = await asyncio.gather(
        *(store.update("qa", description=f"writer {i}", etag=first.etag) for i in range(8)),
        return_exceptions=True,
    )
    landed = [r for r in results if isinstance(r, ProgramRecord)]
    losers = [r for r in results if not isinstance(r, ProgramRecord)]
    assert len(landed) == 1
    assert all(isinstance(e, Aborted) and e.reason == "ETAG_MISMATCH" for e in losers), losers
    assert await store.get("qa") == landed[0]
    stored, _ = await store.list_revisions("qa", page_size=10, page_token="")
    assert [r.revision_id for r in stored] == ["r0002", "r0001"]


async def test_concurrent_update_and_delete_never_leave_orphans(
    db: Database, store: ProgramStore
) -> None:
    await _create(store)
    results = await asyncio.gather(
        *(store.update("qa", description=f"w{i}") for i in range(4)),
        store.delete("qa"),
        return_exceptions=True,
    )
    unexpected = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, (NotFound, Aborted))
    ]
    assert unexpected == []
    assert all(r is None or isinstance(r, (ProgramRecord, DspyGrpcError)) for r in results)
    n_programs, n_revisions = await _row_counts(db)
    assert (n_programs, n_revisions) == (0, 0)
