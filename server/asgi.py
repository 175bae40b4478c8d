"""The ASGI application built from the FLINT_* environment, for process managers that import an
app by path: `flint serve --workers N` (Hypercorn's worker processes), or
`hypercorn --workers 4 --bind 0.0.0.0:8000 flint.asgi:app`."""
from flint.app import create_app
from flint.config import Config
from flint.logs import configure

config = Config.from_env()
configure(config.log_level)
app = create_app(config)
