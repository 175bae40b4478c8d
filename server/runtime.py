"""What a running Flint needs, built once and handed to services (which never import Quart)."""
from __future__ import annotations

from dataclasses import dataclass

from flint.config import Config
from flint.db import Database, open_database
from flint.processors import Processor, build_processor
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
                   processor=processor or processor_for(config), secrets=SecretBox(config.secret_keys))

    async def stop(self) -> None:
        close = getattr(self.processor, "aclose", None)  # a connector's HTTP client, if it keeps one
        if close is not None:
            await close()
        await self.db.close()


def processor_for(config: Config) -> Processor:
    """FLINT_PROCESSOR's connector. Its own HTTP timeout stays under processor_timeout_seconds, so it
    answers "unknown" itself before Flint's own timeout cancels the call."""
    return build_processor(config.processor, stripe_secret_key=config.stripe_secret_key,
                           stripe_api_base=config.stripe_api_base,
                           timeout_seconds=max(1.0, config.processor_timeout_seconds * 0.8))
