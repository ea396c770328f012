"""The console's static files: shipped in the package, read once, served under a content hash.

``/console/static/<version>/<name>``: the version is a hash of every file's content, so a
browser may keep them for a year (``immutable``) and still gets new ones after an upgrade,
whose pages name the new version. A page of an older version asking for an older hash is
redirected to the current file rather than served stale bytes under a cacheable name.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from litestar import Response, get
from litestar.params import FromPath
from litestar.response import Redirect

from exchange.errors import not_found

STATIC_PREFIX = "/console/static"
CACHE_FOREVER = "public, max-age=31536000, immutable"  # one year: the URL changes with the bytes
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@functools.cache
def files() -> dict[str, tuple[bytes, str]]:
    """Every static file by name, with its media type (read once per process)."""
    folder = resources.files("exchange.console") / "static"
    found: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in MEDIA_TYPES:
            found[entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    return found


@functools.cache
def version() -> str:
    digest = hashlib.sha256()
    for name, (content, _) in sorted(files().items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()[:12]


def url(name: str) -> str:
    """The versioned URL of a static file, for templates."""
    if name not in files():
        raise KeyError(f"no console static file {name!r}")
    return f"{STATIC_PREFIX}/{version()}/{name}"


@get(f"{STATIC_PREFIX}/{{tag:str}}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def static_file(tag: FromPath[str], name: FromPath[str]) -> Response:
    found = files().get(name)  # only names in the package: no path reaches the file system
    if found is None:
        raise not_found("static file")
    if tag != version():
        return Redirect(url(name), status_code=302, headers={"Cache-Control": "no-cache"})
    content, media_type = found
    return Response(
        content,
        media_type=media_type,
        headers={"Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff"},
    )
