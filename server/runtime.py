"""What a running Flint needs, built once and handed to services (which never import Quart)."""
from __future__ import annotations

from dataclasses import dataclass

from flint.config import Config
from flint.db import Database, open_database
from flint.processors import Processor, SimulatedProcessor
from flint.security import SecretBox, Signer


@dataclass
class Runtime:
    config: Config
    db: Database
    signer: Signer
    processor: Processor
    secrets: SecretBox

    @classmethod
    async def start(cls, config: Config, processor: Processor | None = None) -> "Runtime":
        db = await open_database(config.database_url, readers=config.sqlite_readers,
                                 pool_size=config.database_pool_size)
        return cls(config=config, db=db, signer=Signer(config.secret_keys),
                   processor=processor or SimulatedProcessor(), secrets=SecretBox(config.secret_keys))

    async def stop(self) -> None:
        await self.db.close()
