"""The console's two scripts (docs/api.md 15), served by Flint itself, never from a CDN: htmx (vendored from
npm, pinned in widget/package.json; tests/console/test_live.py checks the copy is the package's file)
and console.js, Flint's own few lines (confirm dialogs, Copy buttons, pausing the live lists).

Both only enhance pages that work without JavaScript. Each is read and hashed once, when Flint starts:
the layout names it by a versioned URL with its SRI hash and the page's CSP nonce, so the URL can be
cached for good and the browser refuses any other bytes."""
from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass

from markupsafe import Markup, escape
from quart import Blueprint, Response, g, request

from flint import datafiles
from flint.errors import FlintError
from flint.http import pages
from flint.http.auth import public

PREFIX = "/dashboard/assets"
HTMX_VERSION = "2.0.11"  # the version widget/package.json pins; docs/api.md 15 names it
NAMES = ("htmx.min.js", "console.js")
IMMUTABLE = "public, max-age=31536000, immutable"  # asked for by its versioned URL: the bytes never change
BRIEF = "public, max-age=300"  # asked for without (or with an old) version: re-checked soon


@dataclass(frozen=True)
class Script:
    name: str
    body: bytes
    gzipped: bytes
    integrity: str  # "sha384-<base64>" (W3C Subresource Integrity)
    version: str  # a short hash of the bytes, in the URL and the ETag

    @property
    def url(self) -> str:
        return f"{PREFIX}/{self.name}?v={self.version}"


def _load(name: str) -> Script:
    body = (datafiles.hosted_pages() / "static" / "console" / name).read_bytes()
    digest = hashlib.sha384(body).digest()
    return Script(name=name, body=body, gzipped=gzip.compress(body, compresslevel=9, mtime=0),
                  integrity="sha384-" + base64.b64encode(digest).decode(),
                  version=base64.urlsafe_b64encode(digest[:12]).decode().rstrip("="))


# At import, so when Flint starts: a missing or unreadable file stops it there, not on some page later.
SCRIPTS: dict[str, Script] = {name: _load(name) for name in NAMES}


def script_tag(name: str) -> Markup:
    """``{{ console_script("htmx.min.js") }}`` in a template: the tag with its SRI hash and this page's
    nonce (the CSP allows only nonce'd scripts). ``defer``: the page is usable before it runs."""
    script = SCRIPTS[name]
    if name == "htmx.min.js":
        g.csp_connect_self = True  # its requests go to Flint itself: the page's CSP says connect-src 'self'
    return Markup('<script src="{}" integrity="{}" nonce="{}" defer></script>').format(
        script.url, script.integrity, escape(g.get("csp_nonce", "")))


pages.environment.globals["console_script"] = script_tag

bp = Blueprint("console_assets", __name__, url_prefix=PREFIX)


@bp.get("/<name>")
@public  # the same files for everyone, as any page's script is: nothing in them is secret
async def get_script(name: str):
    script = SCRIPTS.get(name)
    if script is None:  # only the names above: nothing else on disk is reachable from here
        raise FlintError(404, "route_not_found", "No such route.")
    g.static_asset = True  # flint.http.requests.finish: no page CSP or no-store for a script
    etag = f'"{script.version}"'
    if request.if_none_match.contains_weak(script.version):  # the browser has these bytes already
        response = Response(b"", status=304)
    elif "gzip" in request.headers.get("Accept-Encoding", ""):
        response = Response(script.gzipped, content_type="text/javascript; charset=utf-8")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(script.body, content_type="text/javascript; charset=utf-8")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = IMMUTABLE if request.args.get("v") == script.version else BRIEF
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"  # the console's own pages only
    return response
