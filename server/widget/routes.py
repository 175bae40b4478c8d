"""The widget's files: the loader merchants paste (`flint.js`), the card frame's script and the
integrity manifest. Cached and open to every origin, as a script tag on a merchant's page needs."""
from __future__ import annotations

import json

from quart import Blueprint, Response, g, request

from flint.http import assets
from flint.http.auth import public

bp = Blueprint("widget", __name__, url_prefix="/widget/v1")

# The loader's URL never changes (merchants paste it), so browsers re-check it every few minutes;
# the frame's script is named by its hash and never changes under its URL.
LOADER_CACHE = "public, max-age=300, stale-while-revalidate=86400"
IMMUTABLE = "public, max-age=31536000, immutable"


def _static(body: bytes, content_type: str, cache: str, etag: str, gzipped: bytes | None = None) -> Response:
    g.static_asset = True  # app.finish: no page CSP/no-store for these
    if etag in request.if_none_match.as_set(include_weak=True) or request.headers.get("If-None-Match") == etag:
        response = Response(b"", status=304)
    elif gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        response = Response(gzipped, content_type=content_type)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(body, content_type=content_type)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache
    response.headers["Vary"] = "Accept-Encoding"
    # Any page may load these; `crossorigin` + SRI on a script tag needs CORS to check the hash.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Timing-Allow-Origin"] = "*"  # merchants' real-user monitoring may time them
    return response


def _script(name: str, cache: str) -> Response:
    item = assets.asset(name)
    return _static(item.body, "text/javascript; charset=utf-8", cache, item.etag, item.gzipped)


@bp.get("/flint.js")
@public
async def get_loader():
    return _script("flint.js", LOADER_CACHE)


@bp.get("/frame.js")
@public
async def get_frame_script():
    item = assets.asset("frame.js")
    pinned = request.args.get("v") == item.etag.strip('"')
    return _script("frame.js", IMMUTABLE if pinned else LOADER_CACHE)


@bp.get("/manifest.json")
@public
async def get_manifest():
    body = json.dumps(assets.manifest(), indent=2).encode()
    etag = '"m-' + assets.asset("flint.js").etag.strip('"') + assets.asset("frame.js").etag.strip('"')[:8] + '"'
    return _static(body, "application/json", LOADER_CACHE, etag)
