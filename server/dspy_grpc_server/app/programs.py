"""Stored programs: validate the definition, then persist it as a new revision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..modules.spec import ModuleSpec, module_from_dict, module_to_dict
from ..store.programs import ProgramRecord, ProgramStore


@dataclass(frozen=True)
class Program:
    """A stored program at one revision, with its definition decoded."""

    record: ProgramRecord
    module: ModuleSpec


class Programs:
    """Create/read/update/delete programs. Definitions are validated before anything is written."""

    def __init__(self, store: ProgramStore) -> None:
        self._store = store

    async def create(
        self, program_id: str, *, module: ModuleSpec, display_name: str, description: str,
        labels: Mapping[str, str],
    ) -> Program:
        module.validate("program.module")
        record = await self._store.create(
            program_id, display_name=display_name, description=description, labels=dict(labels),
            spec=module_to_dict(module),
        )
        return Program(record, module)

    async def get(self, program_id: str, revision_id: str | None = None) -> Program:
        return _decoded(await self._store.get(program_id, revision_id))

    async def list(self, *, page_size: int, page_token: str) -> tuple[list[Program], str]:
        records, token = await self._store.list(page_size=page_size, page_token=page_token)
        return [_decoded(record) for record in records], token

    async def update(
        self, program_id: str, *, module: ModuleSpec | None = None, display_name: str | None = None,
        description: str | None = None, labels: Mapping[str, str] | None = None, etag: str = "",
    ) -> Program:
        if module is not None:
            module.validate("program.module")
        record = await self._store.update(
            program_id, display_name=display_name, description=description,
            labels=dict(labels) if labels is not None else None,
            spec=module_to_dict(module) if module is not None else None, etag=etag,
        )
        return _decoded(record)

    async def delete(self, program_id: str, *, etag: str = "") -> None:
        await self._store.delete(program_id, etag=etag)

    async def list_revisions(self, program_id: str, *, page_size: int, page_token: str) -> tuple[list[Program], str]:
        records, token = await self._store.list_revisions(program_id, page_size=page_size, page_token=page_token)
        return [_decoded(record) for record in records], token


def _decoded(record: ProgramRecord) -> Program:
    return Program(record, module_from_dict(record.spec))
