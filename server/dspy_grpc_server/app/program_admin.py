"""Admin use cases for running programs: their workers and quarantined inputs."""

from __future__ import annotations

from ..core.names import validate_program_id
from ..store.quarantine import QuarantineRecord, QuarantineStore
from .workers import ProgramWorker, ProgramWorkers


class ProgramAdmin:
    def __init__(self, workers: ProgramWorkers, store: QuarantineStore) -> None:
        self._workers = workers
        self._store = store

    def workers(self) -> list[ProgramWorker]:
        return self._workers.workers()

    async def quarantined(self, program_id: str | None, *, page_size: int, page_token: str
                          ) -> tuple[list[QuarantineRecord], str]:
        if program_id is not None:
            validate_program_id(program_id)
        return await self._store.list(program_id, page_size=page_size, page_token=page_token)

    async def clear(self, program_id: str, input_hash: str | None = None) -> int:
        """Release one quarantined input of a program, or all of them; returns how many."""

        validate_program_id(program_id)
        cleared = await self._store.clear(program_id, input_hash)
        await self._workers.quarantine.changed(program_id)
        return cleared
