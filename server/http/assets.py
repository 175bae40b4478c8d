"""The widget's built files (widget/dist, made by `make widget`): read once, hashed for Subresource
Integrity, kept gzipped for browsers that take it."""
from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from flint import datafiles
from flint.errors import FlintError

# Served under /widget/v1/<name>: the loader merchants paste, and the card frame's own script.
FILES = ("flint.js", "frame.js")


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    gzipped: bytes
    integrity: str  # "sha384-<base64>" (W3C Subresource Integrity)
    etag: str

    @property
    def path(self) -> str:
        return f"/widget/v1/{self.name}"

    @property
    def versioned_path(self) -> str:
        # The frame page names its script by content, so that URL can be cached for good.
        return f"{self.path}?v={self.etag.strip(chr(34))}"


def _asset(name: str) -> Asset:
    try:
        body = (datafiles.widget_dist() / name).read_bytes()
    except (FileNotFoundError, RuntimeError):
        raise FlintError(503, "widget_not_built", "The widget is not built on this server (run `make widget`).") from None
    digest = hashlib.sha384(body).digest()
    return Asset(
        name=name, body=body, gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        integrity="sha384-" + base64.b64encode(digest).decode(),
        etag='"' + base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=") + '"',
    )


@lru_cache(maxsize=None)
def asset(name: str) -> Asset:
    if name not in FILES:
        raise FlintError(404, "route_not_found", "No such route.")
    return _asset(name)


def manifest() -> dict:
    """GET /widget/v1/manifest.json (docs/api.md 5): what a merchant pins with SRI and lists in its
    script inventory (PCI DSS v4.0 6.4.3)."""
    files = [asset(name) for name in FILES]
    return {"files": [{"path": a.path, "integrity": a.integrity, "bytes": len(a.body), "gzip_bytes": len(a.gzipped)}
                      for a in files]}
