"""Wiring: builds the engine's services from one :class:`Config` and closes them again."""

from __future__ import annotations

import logging

from ..lm.registry import LMRegistry
from ..modules.engine import Engine
from ..store.database import Database
from ..store.programs import ProgramStore
from .config import Config
from .inference import Inference
from .programs import Programs

log = logging.getLogger("dspy_grpc_server.app")


class Application:
    """Everything the API layer serves, usable in-process without gRPC."""

    def __init__(self, config: Config, database: Database, registry: LMRegistry) -> None:
        self.config = config
        self.database = database
        self.registry = registry
        self.programs = Programs(ProgramStore(database))
        self.engine = Engine(registry, default_model=config.default_model)
        self.inference = Inference(self.programs, self.engine)

    @classmethod
    async def start(cls, config: Config) -> Application:
        """Open the database (running migrations) and the LM registry."""

        database = await Database.open(config.database_url)
        registry = LMRegistry(config.models)
        log.info("database ready; models: %s", ", ".join(registry.aliases()) or "(none configured)")
        return cls(config, database, registry)

    async def aclose(self) -> None:
        await self.registry.aclose()
        await self.database.close()
