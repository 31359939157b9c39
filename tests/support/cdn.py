"""The portal's CDN scripts for the browser tests, without reaching the CDN.

The pages load pinned npm packages from jsDelivr with a Subresource Integrity hash (``HTMX_URL``
and ``HTMX_SRI``, ``SIGNATURE_PAD_URL`` and ``SIGNATURE_PAD_SRI`` in ``portal/web.py``). The
browser tests serve each URL from the very same file, taken from the npm registry
(``npm pack <package>@<version>``) and checked against the portal's SRI hash, so a wrong hash in
the portal or a tampered package fails the set-up (and Chromium checks the hash again).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from portal.web import HTMX_SRI, HTMX_URL, SIGNATURE_PAD_SRI, SIGNATURE_PAD_URL

__all__ = ["CdnAsset", "CdnIntegrityError", "ASSETS", "HTMX", "SIGNATURE_PAD", "sri_sha384", "fetch", "fetch_all"]

_NPM_URL = re.compile(
    r"https://cdn\.jsdelivr\.net/npm/(?P<package>(?:@[^/@]+/)?[^/@]+)@(?P<version>[^/]+)/(?P<path>.+)"
)


class CdnIntegrityError(RuntimeError):
    pass


@dataclass(frozen=True)
class CdnAsset:
    """One file of a pinned npm package, as jsDelivr serves it, with its SRI hash."""

    url: str
    sri: str

    def _part(self, name: str) -> str:
        match = _NPM_URL.fullmatch(self.url)
        if match is None:
            raise ValueError(f"not a pinned jsDelivr npm URL: {self.url}")
        return match.group(name)

    @property
    def package(self) -> str:
        return self._part("package")

    @property
    def version(self) -> str:
        return self._part("version")

    @property
    def path(self) -> str:
        """The file's path inside the package (inside the tarball: ``package/<path>``)."""
        return self._part("path")

    @property
    def cache_name(self) -> str:
        return f"{self.package.replace('/', '+')}-{self.version}-{self.path.replace('/', '+')}"

    def verify(self, data: bytes) -> bytes:
        """Return ``data`` if it matches the SRI hash, else raise CdnIntegrityError."""
        actual = sri_sha384(data)
        if actual != self.sri:
            raise CdnIntegrityError(f"{self.url}: integrity mismatch: expected {self.sri}, got {actual}")
        return data


HTMX = CdnAsset(HTMX_URL, HTMX_SRI)
SIGNATURE_PAD = CdnAsset(SIGNATURE_PAD_URL, SIGNATURE_PAD_SRI)
ASSETS = (HTMX, SIGNATURE_PAD)


def sri_sha384(data: bytes) -> str:
    """The Subresource Integrity string (``sha384-<base64>``) of ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def npm_pack(asset: CdnAsset) -> bytes:
    """The asset's file from ``npm pack <package>@<version>`` (unchecked)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm not found: it is needed to fetch {asset.package} (make test installs it)")
    env = dict(os.environ)
    env.update(
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        npm_config_loglevel="error",
    )
    spec = f"{asset.package}@{asset.version}"
    with tempfile.TemporaryDirectory(prefix="cdn-pack-") as tmp:
        proc = subprocess.run(
            [npm, "pack", spec, "--pack-destination", tmp],
            cwd=tmp, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"npm pack {spec} failed:\n{proc.stdout}\n{proc.stderr}")
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if not tarballs:
            raise RuntimeError(f"npm pack {spec} produced no tarball:\n{proc.stdout}\n{proc.stderr}")
        with tarfile.open(tarballs[0], "r:gz") as tar:
            try:
                member = tar.extractfile(f"package/{asset.path}")
            except KeyError:
                member = None
            if member is None:
                raise RuntimeError(f"package/{asset.path} not in {tarballs[0].name}")
            return member.read()


def fetch(asset: CdnAsset, cache_dir: Path) -> bytes:
    """The asset's bytes, verified against its SRI hash; cached in ``cache_dir``.

    A cached copy that fails the check is fetched again; fresh bytes that fail it raise
    CdnIntegrityError.
    """
    cached = Path(cache_dir) / asset.cache_name
    if cached.is_file():
        data = cached.read_bytes()
        if sri_sha384(data) == asset.sri:
            return data
        cached.unlink()
    data = asset.verify(npm_pack(asset))
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, cached)
    return data


def fetch_all(cache_dir: Path, assets: tuple[CdnAsset, ...] = ASSETS) -> dict[str, bytes]:
    """URL → verified bytes of every asset (for ``route_cdn``)."""
    return {asset.url: fetch(asset, cache_dir) for asset in assets}
