"""htmx for the browser tests, without reaching the CDN.

The portal's pages load htmx from HTMX_CDN_URL with ``integrity=HTMX_SRI``. The
browser tests serve that URL from the very same file, taken from the npm registry
(``npm pack htmx.org@VERSION``) and checked against the SRI hash, so a wrong hash
in the templates or a tampered package fails the tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

__all__ = ["HTMX_VERSION", "HTMX_CDN_URL", "HTMX_SRI", "sri_sha384", "verify_htmx", "fetch_htmx"]

HTMX_VERSION = "2.0.11"
HTMX_CDN_URL = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"

_MEMBER = "package/dist/htmx.min.js"


class HtmxIntegrityError(RuntimeError):
    pass


def sri_sha384(data: bytes) -> str:
    """The Subresource Integrity string (``sha384-<base64>``) of ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def verify_htmx(data: bytes) -> bytes:
    """Return ``data`` if it matches HTMX_SRI, else raise HtmxIntegrityError."""
    actual = sri_sha384(data)
    if actual != HTMX_SRI:
        raise HtmxIntegrityError(f"htmx.min.js integrity mismatch: expected {HTMX_SRI}, got {actual}")
    return data


def _npm_pack() -> bytes:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: it is needed to fetch htmx (make test installs it)")
    env = dict(os.environ)
    env.update(
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        npm_config_loglevel="error",
    )
    with tempfile.TemporaryDirectory(prefix="htmx-pack-") as tmp:
        proc = subprocess.run(
            [npm, "pack", f"htmx.org@{HTMX_VERSION}", "--pack-destination", tmp],
            cwd=tmp, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"npm pack htmx.org@{HTMX_VERSION} failed:\n{proc.stdout}\n{proc.stderr}")
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if not tarballs:
            raise RuntimeError(f"npm pack produced no tarball:\n{proc.stdout}\n{proc.stderr}")
        with tarfile.open(tarballs[0], "r:gz") as tar:
            member = tar.extractfile(_MEMBER)
            if member is None:
                raise RuntimeError(f"{_MEMBER} not in {tarballs[0].name}")
            return member.read()


def fetch_htmx(cache_dir: Path) -> bytes:
    """htmx.min.js bytes, verified against HTMX_SRI; cached in ``cache_dir``.

    A cached copy that fails the check is fetched again; fresh bytes that fail it raise.
    """
    cache_dir = Path(cache_dir)
    cached = cache_dir / f"htmx-{HTMX_VERSION}.min.js"
    if cached.is_file():
        data = cached.read_bytes()
        if sri_sha384(data) == HTMX_SRI:
            return data
        cached.unlink()
    data = verify_htmx(_npm_pack())
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, cached)
    return data
