"""Static files (the portal's assets, the built docs site) served from memory, with ETag and caching headers.

The files are read once when the app is made: a request is a dictionary lookup, no stat() or open().
"""

from __future__ import annotations

import hashlib
import mimetypes
from urllib.parse import unquote
from dataclasses import dataclass
from pathlib import Path

from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import asgi
from litestar.types import Receive, Scope, Send

TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/xml")
mimetypes.add_type("application/javascript", ".js")
mimetypes.add_type("application/manifest+json", ".webmanifest")


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    headers: list[tuple[bytes, bytes]]
    etag: bytes


def content_type(name: str) -> str:
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith(TEXT_TYPES) else kind


def load_directory(root: Path, cache_control: str) -> dict[str, StaticFile]:
    """Every file under root by its path relative to root ("css/portal.css")."""
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        body = path.read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'.encode()
        headers = [
            (b"content-type", content_type(path.name).encode()),
            (b"etag", etag),
            (b"cache-control", cache_control.encode()),
        ]
        files[path.relative_to(root).as_posix()] = StaticFile(body, headers, etag)
    return files


def etag_matches(if_none_match: bytes | None, etag: bytes) -> bool:
    """RFC 9110 §13.1.2: weak comparison, a list of tags or *."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")]
    return b"*" in tags or etag in tags


def resolve(files: dict[str, StaticFile], path: str, html_mode: bool, raw_path: str) -> tuple[str | None, bool]:
    """The file's key for a request path, and whether the address should get its trailing slash first
    (a directory's page is served at ".../" so that its relative links work)."""
    key = path.strip("/")
    if key in files:
        return key, False
    if html_mode:
        index = f"{key}/index.html" if key else "index.html"
        if index in files:
            return index, bool(raw_path) and not raw_path.endswith("/")
    return None, False


async def send_file(scope: Scope, send: Send, file: StaticFile, status: int = 200) -> None:
    headers = dict(scope["headers"])
    if status == 200 and etag_matches(headers.get(b"if-none-match"), file.etag):
        await send({"type": "http.response.start", "status": 304, "headers": file.headers[1:]})
        await send({"type": "http.response.body", "body": b""})
        return
    length = (b"content-length", str(len(file.body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*file.headers, length]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else file.body})


def static_files(path: str, root: Path, *, name: str, cache_control: str, html_mode: bool = False,
                 sites: str = "operator"):
    """A mount at `path` serving the files under `root` from memory (GET and HEAD), on the sites named (§9)."""
    files = load_directory(root, cache_control)

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})
        raw = scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        if "\x00" in scope["path"] or "%00" in raw:
            raise HTTPException(status_code=400)
        key, add_slash = resolve(files, scope["path"], html_mode, raw)
        if raw:  # routing cut the mount's prefix off scope["path"]; the server's access log should see it whole
            scope["path"] = unquote(raw)
        if key is None:
            if html_mode and "404.html" in files:
                await send_file(scope, send, files["404.html"], status=404)
                return
            raise NotFoundException()
        if add_slash:
            location = "/" + raw.lstrip("/") + "/"  # never "//host/…"
            await send({"type": "http.response.start", "status": 301,
                        "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await send_file(scope, send, files[key])

    serve.__name__ = f"static_{name}"
    return asgi(path, name=name, is_static=True, copy_scope=False,
                opt={"exclude_from_csrf": True, "skip_session": True, "sites": sites})(serve)
