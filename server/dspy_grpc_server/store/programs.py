"""Stored programs and their immutable revisions.

A *program* (resource name ``programs/{program_id}``) is a named, versioned program definition. Its
content -- display name, description, labels and ``spec`` (an opaque JSON object owned by the
modules layer) -- lives in *revisions*: every :meth:`ProgramStore.create` and every
:meth:`ProgramStore.update` writes a new revision and never changes an old one, so any revision can
be read back exactly as it was.

Revision ids
    ``"r"`` followed by a per-program counter zero-padded to at least four digits: ``r0001`` is the
    revision written by ``create``, ``r0002`` the first update, and so on (``r10000`` follows
    ``r9999``). They are short, unique within a program, never reused while the program exists, and
    sort in creation order (numerically; also as strings up to ``r9999``).

Etags
    An opaque string. The etag of the program (what ``get(program_id)`` and ``list`` return) changes
    with every new revision. A record showing an older revision carries that revision's own etag,
    which never matches the program's current one. ``update``/``delete`` given a non-empty etag
    that is not the program's current etag fail with ``Aborted`` (reason ``ETAG_MISMATCH``).

Concurrency
    Writers use compare-and-swap on the program row inside a transaction, and the primary key
    ``(program_id, revision)`` rules out duplicate revision ids. Concurrent blind updates (no etag)
    are retried on conflict so each lands as its own revision; if a program stays contended for too
    long the update fails with ``Aborted`` (reason ``CONCURRENT_MODIFICATION``) rather than being lost.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from dspy_grpc_server.core.errors import Aborted, AlreadyExists, NotFound, Unavailable, invalid
from dspy_grpc_server.core.names import validate_program_id
from dspy_grpc_server.store.database import Database
from dspy_grpc_server.store.paging import decode_page_token, encode_page_token, normalize_page_size
from dspy_grpc_server.store.schema import program_revisions, programs

#: How many times a blind (etag-less) write is retried when another writer got there first.
MAX_WRITE_ATTEMPTS = 25

_REVISION_ID = re.compile(r"r(\d{4,})")


def format_revision_id(number: int) -> str:
    """Revision number -> revision id: ``1 -> "r0001"``, ``12345 -> "r12345"``."""

    return f"r{number:04d}"


def parse_revision_id(revision_id: str, *, field: str = "revision_id") -> int:
    """Revision id -> revision number; ``InvalidArgument`` on ``field`` if it is not of that form."""

    match = _REVISION_ID.fullmatch(revision_id) if isinstance(revision_id, str) else None
    number = int(match.group(1)) if match else 0
    if number < 1 or format_revision_id(number) != revision_id:
        raise invalid(field, f"{revision_id!r} is not a revision id (expected e.g. 'r0001')")
    return number


@dataclass(frozen=True)
class ProgramRecord:
    """One program as stored, showing one of its revisions (the active one unless asked otherwise).

    ``labels`` and ``spec`` are read-only views; ``spec`` is plain JSON (dicts, lists, str, numbers,
    bools, None). All times are timezone-aware UTC.
    """

    program_id: str
    display_name: str
    description: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]
    revision_id: str
    revision_create_time: datetime
    create_time: datetime
    update_time: datetime
    etag: str
    active_revision_id: str

    @property
    def name(self) -> str:
        """The resource name, ``programs/{program_id}``."""

        return f"programs/{self.program_id}"


class _Conflict(Exception):
    """Another writer changed the program between our read and our write; try again."""


def _new_etag() -> str:
    return secrets.token_hex(10)


def _now() -> datetime:
    return datetime.now(UTC)


def _check_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    return value


def _check_labels(labels: object) -> dict[str, str]:
    if not isinstance(labels, Mapping):
        raise invalid("labels", "must be a map of string keys to string values")
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not key:
            raise invalid("labels", f"key {key!r} must be a non-empty string")
        if not isinstance(value, str):
            raise invalid(f"labels.{key}", "must be a string")
        checked[key] = value
    return dict(sorted(checked.items()))


def _check_spec(spec: object) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise invalid("spec", "must be a JSON object")
    try:
        # Round-trip: a private deep copy holding nothing but JSON values.
        return json.loads(json.dumps(dict(spec), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise invalid("spec", f"is not valid JSON: {error}") from None


def _not_found(program_id: str) -> NotFound:
    return NotFound(
        f"program 'programs/{program_id}' not found",
        reason="PROGRAM_NOT_FOUND",
        metadata={"program_id": program_id},
    )


def _etag_mismatch(program_id: str) -> Aborted:
    return Aborted(
        f"etag does not match the current state of 'programs/{program_id}'; re-read and retry",
        reason="ETAG_MISMATCH",
        metadata={"program_id": program_id},
    )


def _record_query() -> sa.Select[Any]:
    """Programs joined with one of their revisions (the caller adds the join condition on revision)."""

    return sa.select(
        programs.c.program_id,
        programs.c.create_time,
        programs.c.update_time,
        programs.c.etag.label("program_etag"),
        programs.c.active_revision,
        programs.c.latest_revision,
        program_revisions.c.revision,
        program_revisions.c.create_time.label("revision_create_time"),
        program_revisions.c.etag.label("revision_etag"),
        program_revisions.c.display_name,
        program_revisions.c.description,
        program_revisions.c.labels,
        program_revisions.c.spec,
    ).select_from(
        programs.join(program_revisions, program_revisions.c.program_id == programs.c.program_id)
    )


def _active_only() -> sa.ColumnElement[bool]:
    return program_revisions.c.revision == programs.c.active_revision


def _to_record(row: sa.Row[Any]) -> ProgramRecord:
    is_active = row.revision == row.active_revision
    return ProgramRecord(
        program_id=row.program_id,
        display_name=row.display_name,
        description=row.description,
        labels=MappingProxyType(dict(row.labels)),
        spec=MappingProxyType(row.spec),
        revision_id=format_revision_id(row.revision),
        revision_create_time=row.revision_create_time,
        create_time=row.create_time,
        update_time=row.update_time,
        etag=row.program_etag if is_active else row.revision_etag,
        active_revision_id=format_revision_id(row.active_revision),
    )


@asynccontextmanager
async def _translated_errors() -> AsyncIterator[None]:
    """Turn a timed-out SQLite lock into a retryable ``Unavailable``."""

    try:
        yield
    except OperationalError as error:
        if "locked" in str(error.orig).lower() or "busy" in str(error.orig).lower():
            raise Unavailable(
                "the database is busy; retry shortly", reason="STORE_BUSY", retry_after=1.0
            ) from error
        raise


class ProgramStore:
    """CRUD for programs with immutable revisions, on top of an open :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ----------------------------------------------------------------------------- reads

    async def get(self, program_id: str, revision_id: str | None = None) -> ProgramRecord:
        """Return the program, showing ``revision_id`` or, when it is ``None``/empty, the active revision.

        Raises ``NotFound`` with reason ``PROGRAM_NOT_FOUND`` or ``REVISION_NOT_FOUND``, and
        ``InvalidArgument`` for a malformed ``program_id`` or ``revision_id``.
        """

        validate_program_id(program_id)
        number = parse_revision_id(revision_id) if revision_id else None
        condition = _active_only() if number is None else program_revisions.c.revision == number
        query = _record_query().where(programs.c.program_id == program_id, condition)
        async with _translated_errors(), self._db.sessions() as session:
            row = (await session.execute(query)).one_or_none()
            if row is not None:
                return _to_record(row)
            if number is not None and await self._exists(session, program_id):
                raise NotFound(
                    f"revision {revision_id!r} of 'programs/{program_id}' not found",
                    reason="REVISION_NOT_FOUND",
                    metadata={"program_id": program_id, "revision_id": revision_id or ""},
                )
        raise _not_found(program_id)

    async def list(self, *, page_size: int = 0, page_token: str = "") -> tuple[list[ProgramRecord], str]:
        """One page of programs ordered by ``program_id``, each showing its active revision.

        Returns ``(records, next_page_token)``; the token is ``""`` after the last page. See
        :mod:`dspy_grpc_server.store.paging` for page-size rules and token errors.
        """

        size = normalize_page_size(page_size)
        after = decode_page_token(page_token, "programs")
        if after is not None and not isinstance(after, str):
            raise invalid("page_token", "is not a page token returned by this listing")
        query = _record_query().where(_active_only())
        if after is not None:
            query = query.where(programs.c.program_id > after)
        query = query.order_by(programs.c.program_id).limit(size + 1)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        records = [_to_record(row) for row in rows[:size]]
        more = len(rows) > size
        return records, encode_page_token("programs", records[-1].program_id) if more else ""

    async def list_revisions(
        self, program_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ProgramRecord], str]:
        """One page of the program's revisions, newest first, each as a full :class:`ProgramRecord`.

        Raises ``NotFound`` (``PROGRAM_NOT_FOUND``) if the program does not exist.
        """

        validate_program_id(program_id)
        size = normalize_page_size(page_size)
        scope = f"programs/{program_id}/revisions"
        before = decode_page_token(page_token, scope)
        if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
            raise invalid("page_token", "is not a page token returned by this listing")
        query = _record_query().where(programs.c.program_id == program_id)
        if before is not None:
            query = query.where(program_revisions.c.revision < before)
        query = query.order_by(program_revisions.c.revision.desc()).limit(size + 1)
        async with _translated_errors(), self._db.sessions() as session:
            rows = (await session.execute(query)).all()
            if not rows and not await self._exists(session, program_id):
                raise _not_found(program_id)
        records = [_to_record(row) for row in rows[:size]]
        more = len(rows) > size
        return records, encode_page_token(scope, rows[size - 1].revision) if more else ""

    # ----------------------------------------------------------------------------- writes

    async def create(
        self,
        program_id: str,
        *,
        display_name: str = "",
        description: str = "",
        labels: Mapping[str, str] | None = None,
        spec: Mapping[str, Any],
    ) -> ProgramRecord:
        """Create ``programs/{program_id}`` with its first revision, ``r0001``.

        Atomic: on any failure nothing is written. Raises ``AlreadyExists`` (reason
        ``PROGRAM_EXISTS``) if the id is taken and ``InvalidArgument`` for bad input.
        """

        validate_program_id(program_id)
        display_name = _check_text(display_name, "display_name")
        description = _check_text(description, "description")
        clean_labels = _check_labels(labels or {})
        clean_spec = _check_spec(spec)
        now = _now()
        etag = _new_etag()
        async with _translated_errors(), self._db.sessions() as session:
            try:
                async with session.begin():
                    await session.execute(
                        sa.insert(programs).values(
                            program_id=program_id,
                            create_time=now,
                            update_time=now,
                            etag=etag,
                            latest_revision=1,
                            active_revision=1,
                        )
                    )
                    await session.execute(
                        sa.insert(program_revisions).values(
                            program_id=program_id,
                            revision=1,
                            create_time=now,
                            etag=etag,
                            display_name=display_name,
                            description=description,
                            labels=clean_labels,
                            spec=clean_spec,
                        )
                    )
            except IntegrityError:
                if await self._exists(session, program_id):
                    raise AlreadyExists(
                        f"program 'programs/{program_id}' already exists",
                        reason="PROGRAM_EXISTS",
                        metadata={"program_id": program_id},
                    ) from None
                raise
        return ProgramRecord(
            program_id=program_id,
            display_name=display_name,
            description=description,
            labels=MappingProxyType(clean_labels),
            spec=MappingProxyType(clean_spec),
            revision_id=format_revision_id(1),
            revision_create_time=now,
            create_time=now,
            update_time=now,
            etag=etag,
            active_revision_id=format_revision_id(1),
        )

    async def update(
        self,
        program_id: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        spec: Mapping[str, Any] | None = None,
        etag: str = "",
        activate: bool = True,
        guard: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> ProgramRecord:
        """Write a new revision; arguments left as ``None`` are copied from the active revision.

        ``guard``, when given, runs first inside the writing transaction and may refuse the write by
        raising (a job's lease check: only the job's current holder writes its result revision).

        The new revision becomes the active one (unless ``activate`` is False: then it is stored
        and readable by its revision id, and the active revision stays). With a non-empty ``etag`` the update only applies
        if it matches the program's current etag (else ``Aborted``, reason ``ETAG_MISMATCH``).
        Raises ``NotFound`` (``PROGRAM_NOT_FOUND``) and ``InvalidArgument`` for bad input.
        """

        validate_program_id(program_id)
        changes: dict[str, Any] = {}
        if display_name is not None:
            changes["display_name"] = _check_text(display_name, "display_name")
        if description is not None:
            changes["description"] = _check_text(description, "description")
        if labels is not None:
            changes["labels"] = _check_labels(labels)
        if spec is not None:
            changes["spec"] = _check_spec(spec)

        for attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                async with _translated_errors(), self._db.sessions() as session:
                    return await self._update_once(session, program_id, changes, etag, activate, guard)
            except _Conflict:
                await _backoff(attempt)
        raise _contended(program_id)

    async def delete(self, program_id: str, *, etag: str = "") -> None:
        """Delete the program and all its revisions.

        Raises ``NotFound`` (``PROGRAM_NOT_FOUND``) and, for a non-empty ``etag`` that is not the
        program's current one, ``Aborted`` (``ETAG_MISMATCH``).
        """

        validate_program_id(program_id)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                async with _translated_errors(), self._db.sessions() as session:
                    await self._delete_once(session, program_id, etag)
                    return
            except _Conflict:
                await _backoff(attempt)
        raise _contended(program_id)

    async def activate(self, program_id: str, revision_id: str, *, etag: str = "") -> ProgramRecord:
        """Make an existing revision the active one (the program's etag changes); returns the program
        showing it. Raises ``NotFound`` (``PROGRAM_NOT_FOUND`` / ``REVISION_NOT_FOUND``) and, for a
        non-empty ``etag`` that is not the program's current one, ``Aborted`` (``ETAG_MISMATCH``)."""

        validate_program_id(program_id)
        number = parse_revision_id(revision_id)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                async with _translated_errors(), self._db.sessions() as session:
                    async with session.begin():
                        program = (
                            await session.execute(
                                sa.select(programs).where(programs.c.program_id == program_id).with_for_update()
                            )
                        ).one_or_none()
                        if program is None:
                            raise _not_found(program_id)
                        if etag and etag != program.etag:
                            raise _etag_mismatch(program_id)
                        if not 1 <= number <= program.latest_revision:
                            raise NotFound(
                                f"revision {revision_id!r} of 'programs/{program_id}' not found",
                                reason="REVISION_NOT_FOUND",
                                metadata={"program_id": program_id, "revision_id": revision_id},
                            )
                        new_etag = _new_etag()
                        swapped = await session.execute(
                            sa.update(programs)
                            .where(programs.c.program_id == program_id, programs.c.etag == program.etag)
                            .values(active_revision=number, etag=new_etag)
                        )
                        if swapped.rowcount != 1:
                            raise _Conflict()
                break
            except _Conflict:
                await _backoff(attempt)
        else:
            raise _contended(program_id)
        return await self.get(program_id)

    # ----------------------------------------------------------------------------- internals

    @staticmethod
    async def _exists(session: AsyncSession, program_id: str) -> bool:
        query = sa.select(programs.c.program_id).where(programs.c.program_id == program_id)
        return (await session.execute(query)).first() is not None

    async def _update_once(
        self, session: AsyncSession, program_id: str, changes: dict[str, Any], etag: str, activate: bool = True,
        guard: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> ProgramRecord:
        async with session.begin():
            if guard is not None:
                await guard(session)
            # Lock the program row first (on PostgreSQL writers then queue instead of conflicting;
            # SQLite ignores FOR UPDATE and relies on the compare-and-swap below plus retries).
            program = (
                await session.execute(
                    sa.select(programs).where(programs.c.program_id == program_id).with_for_update()
                )
            ).one_or_none()
            if program is None:
                raise _not_found(program_id)
            if etag and etag != program.etag:
                raise _etag_mismatch(program_id)
            current = (
                await session.execute(
                    sa.select(program_revisions).where(
                        program_revisions.c.program_id == program_id,
                        program_revisions.c.revision == program.active_revision,
                    )
                )
            ).one_or_none()
            if current is None:
                raise _Conflict()  # deleted or re-created between the two reads
            counter = program.latest_revision
            number = counter + 1
            now = max(_now(), program.update_time)
            new_etag = _new_etag()
            # A revision that is not active carries its own etag (never the program's current one).
            new_revision_etag = new_etag if activate else _new_etag()
            swapped = await session.execute(
                sa.update(programs)
                .where(
                    programs.c.program_id == program_id,
                    programs.c.latest_revision == counter,
                    programs.c.etag == program.etag,
                )
                .values(
                    latest_revision=number,
                    active_revision=number if activate else program.active_revision,
                    etag=new_etag,
                    update_time=now,
                )
            )
            if swapped.rowcount != 1:
                raise _Conflict()
            content = {
                "display_name": current.display_name,
                "description": current.description,
                "labels": dict(current.labels),
                "spec": current.spec,
                **changes,
            }
            try:
                await session.execute(
                    sa.insert(program_revisions).values(
                        program_id=program_id,
                        revision=number,
                        create_time=now,
                        etag=new_revision_etag,
                        **content,
                    )
                )
            except IntegrityError:
                raise _Conflict() from None
        return ProgramRecord(
            program_id=program_id,
            display_name=content["display_name"],
            description=content["description"],
            labels=MappingProxyType(content["labels"]),
            spec=MappingProxyType(content["spec"]),
            revision_id=format_revision_id(number),
            revision_create_time=now,
            create_time=program.create_time,
            update_time=now,
            etag=new_revision_etag,
            active_revision_id=format_revision_id(number if activate else program.active_revision),
        )

    async def _delete_once(self, session: AsyncSession, program_id: str, etag: str) -> None:
        async with session.begin():
            current_etag = await session.scalar(
                sa.select(programs.c.etag)
                .where(programs.c.program_id == program_id)
                .with_for_update()
            )
            if current_etag is None:
                raise _not_found(program_id)
            if etag and etag != current_etag:
                raise _etag_mismatch(program_id)
            await session.execute(
                sa.delete(program_revisions).where(program_revisions.c.program_id == program_id)
            )
            deleted = await session.execute(
                sa.delete(programs).where(
                    programs.c.program_id == program_id, programs.c.etag == current_etag
                )
            )
            if deleted.rowcount != 1:
                raise _Conflict()  # rolls back the revisions delete too


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def _contended(program_id: str) -> Aborted:
    return Aborted(
        f"'programs/{program_id}' is being modified concurrently; retry",
        reason="CONCURRENT_MODIFICATION",
        metadata={"program_id": program_id},
    )
