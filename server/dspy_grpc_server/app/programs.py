"""Stored programs: validate the definition, then persist it as a new revision."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import FailedPrecondition, NotFound, invalid
from ..modules.build import build_module
from ..modules.dspy_state import export_state, import_state
from ..modules.spec import ModuleSpec
from ..modules.storage import module_from_dict, module_to_dict
from ..store.jobs import Guard
from ..store.changes import ChangeFeed
from ..store.programs import ProgramRecord, ProgramStore, format_revision_id, parse_revision_id

#: The change-feed topic of a program's definition, active revision or existence.
PROGRAM_TOPIC = "program"


@dataclass(frozen=True)
class Program:
    """A stored program at one revision, with its definition decoded."""

    record: ProgramRecord
    module: ModuleSpec


class Programs:
    """Create/read/update/delete programs. Definitions are validated before anything is written."""

    def __init__(self, store: ProgramStore, changes: ChangeFeed | None = None,
                 check: Callable[[ModuleSpec, str], Awaitable[None]] | None = None) -> None:
        self._store = store
        #: Where every create/update/activate/rollback/delete is announced (topic ``program``).
        self.changes = changes if changes is not None else ChangeFeed()
        #: Checks what a definition refers to outside itself (corpora, retriever URLs).
        self._check = check

    async def _validate(self, module: ModuleSpec, path: str) -> None:
        build_module(module, path)
        if self._check is not None:
            await self._check(module, path)

    async def _changed(self, program_id: str) -> None:
        await self.changes.publish(PROGRAM_TOPIC, program_id)

    async def create(
        self, program_id: str, *, module: ModuleSpec, display_name: str, description: str,
        labels: Mapping[str, str],
    ) -> Program:
        await self._validate(module, "program.module")
        record = await self._store.create(
            program_id, display_name=display_name, description=description, labels=dict(labels),
            spec=module_to_dict(module),
        )
        await self._changed(program_id)
        return Program(record, module)

    async def get(self, program_id: str, revision_id: str | None = None) -> Program:
        return _decoded(await self._store.get(program_id, revision_id))

    async def list(self, *, page_size: int, page_token: str) -> tuple[list[Program], str]:
        records, token = await self._store.list(page_size=page_size, page_token=page_token)
        return [_decoded(record) for record in records], token

    async def update(
        self, program_id: str, *, module: ModuleSpec | None = None, display_name: str | None = None,
        description: str | None = None, labels: Mapping[str, str] | None = None, etag: str = "",
        activate: bool = True, guard: Guard | None = None,
    ) -> Program:
        if module is not None:
            await self._validate(module, "program.module")
        record = await self._store.update(
            program_id, display_name=display_name, description=description,
            labels=dict(labels) if labels is not None else None,
            spec=module_to_dict(module) if module is not None else None, etag=etag, activate=activate, guard=guard,
        )
        await self._changed(program_id)
        return _decoded(record)

    async def delete(self, program_id: str, *, etag: str = "") -> None:
        await self._store.delete(program_id, etag=etag)
        await self._changed(program_id)

    async def list_revisions(self, program_id: str, *, page_size: int, page_token: str) -> tuple[list[Program], str]:
        records, token = await self._store.list_revisions(program_id, page_size=page_size, page_token=page_token)
        return [_decoded(record) for record in records], token

    async def activate(self, program_id: str, revision_id: str, *, etag: str = "") -> Program:
        """Make ``revision_id`` the revision that runs when the program is named without "@"."""

        record = await self._store.activate(program_id, revision_id, etag=etag)
        await self._changed(program_id)
        return _decoded(record)

    async def rollback(self, program_id: str, *, etag: str = "") -> Program:
        """Activate the revision before the active one."""

        active = (await self._store.get(program_id)).active_revision_id
        number = parse_revision_id(active)
        if number <= 1:
            raise FailedPrecondition(
                f"'programs/{program_id}' is at its first revision {active}; there is nothing to roll back to",
                reason="NO_EARLIER_REVISION", metadata={"program_id": program_id, "revision_id": active},
            )
        return await self.activate(program_id, format_revision_id(number - 1), etag=etag)

    async def import_dspy(self, program_id: str, dspy_json: str, *, module: ModuleSpec | None = None,
                          etag: str = "") -> Program:
        """A DSPy saved state applied to ``module`` (or the active revision's) as a new, active revision;
        creates the program when it does not exist and ``module`` is given."""

        state = _parse_dspy_json(dspy_json)
        existing: Program | None = None
        try:
            existing = await self.get(program_id)
        except NotFound as error:
            if error.reason != "PROGRAM_NOT_FOUND" or module is None:
                raise
        if module is not None:
            await self._validate(module, "module")
        structure = module if module is not None else existing.module  # type: ignore[union-attr]
        imported = import_state(structure, state)
        if existing is None:
            return await self.create(program_id, module=imported, display_name="", description="", labels={})
        return await self.update(program_id, module=imported, etag=etag)

    async def export_dspy(self, program_id: str, revision_id: str | None = None) -> tuple[Program, dict[str, Any]]:
        """The program revision and DSPy's saved JSON state for it."""

        program = await self.get(program_id, revision_id)
        return program, export_state(program.module)


def _parse_dspy_json(text: str) -> Mapping[str, Any]:
    if not text.strip():
        raise invalid("dspy_json", "is required: the JSON DSPy's module.save(\"program.json\") writes")
    try:
        state = json.loads(text)
    except json.JSONDecodeError as error:
        raise invalid("dspy_json", f"is not valid JSON: {error}") from None
    if not isinstance(state, dict):
        raise invalid("dspy_json", "must be a JSON object")
    return state


def _decoded(record: ProgramRecord) -> Program:
    return Program(record, module_from_dict(record.spec))
