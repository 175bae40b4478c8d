"""The ASGI application built from the FLINT_* environment, for process managers that import an
app by path: `flint serve --workers N` (Uvicorn's worker processes), or
`uvicorn --workers 4 --http httptools --no-proxy-headers --host 0.0.0.0 flint.asgi:app`."""
from flint.app import create_app
from flint.config import Config
from flint.logs import configure

config = Config.from_env()
configure(config.log_level)
app = create_app(config)
