"""The MkDocs Material site: built from docs/ + mkdocs.yml, served by the portal under /docs/.

The site shows the tariff the portal runs with (PORTAL_TARIFF_*) and its canonical links follow
PORTAL_BASE_URL: both reach the pricing hook (docs_hooks/pricing.py) through the environment of
`mkdocs build`, read there the way portal.settings reads them. The published fingerprints of the
operator's seal certificate (this installation's own in PORTAL_DATA_DIR/seal first, then
PORTAL_SEAL_SHA256) reach the seal hook (docs_hooks/seal.py) as PORTAL_SEAL_SHA256 the same way. A
stamp in the site dir (STAMP_NAME) records what the site was built from — a hash of the sources, the
tariff, the base URL and the seal fingerprints — and ensure_built() rebuilds when it differs, whatever
the files' times.

    python -m portal.docs_site [SITE_DIR]   # build with the environment's tariff and base URL
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Mapping, Sequence

from portal.pricing.tariff import ENV_VARIABLES, Tariff, tariff_from_env
from portal.settings import REPO_ROOT

STAMP_NAME = ".build-stamp"  # hidden: `mkdocs build` keeps dotfiles when it cleans the site dir
_RUBLE_FIELDS = ("base_fee_kopecks", "axon_rate_kopecks")


def base_url_from_env(environ: Mapping[str, str]) -> str:
    """The portal's external address, by the same rule as portal.settings.load_settings()."""
    port = environ.get("PORT", "8000")
    return environ.get("PORTAL_BASE_URL", f"http://127.0.0.1:{port}").rstrip("/")


def site_url(base_url: str) -> str:
    """Where the portal serves the site: mkdocs' site_url (canonical links, sitemap)."""
    return base_url.rstrip("/") + "/docs/"


def seal_fingerprints(configured: Sequence[str] = (), data_dir: Path | None = None) -> tuple[str, ...]:
    """The seal fingerprints the docs publish: the certificate in data_dir/seal (the one this installation
    seals with: the current one) first, then the configured ones (settings.seal_sha256: PORTAL_SEAL_SHA256,
    which also keeps the replaced ones)."""
    from portal.documents.seal import certificate_sha256_in
    from portal.settings import parse_seal_fingerprints

    own = certificate_sha256_in(data_dir) if data_dir is not None else None
    return parse_seal_fingerprints(own or "", *configured)


def seal_fingerprints_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """seal_fingerprints() by the same rules as portal.settings (PORTAL_SEAL_SHA256, PORTAL_DATA_DIR)."""
    return seal_fingerprints((environ.get("PORTAL_SEAL_SHA256", ""),), Path(environ.get("PORTAL_DATA_DIR", "var")))


def tariff_env(tariff: Tariff) -> dict[str, str]:
    """PORTAL_TARIFF_* variables that make tariff_from_env() return this tariff."""
    env = {}
    for name, field in ENV_VARIABLES.items():
        value = getattr(tariff, field)
        env[name] = f"{value // 100}.{value % 100:02d}" if field in _RUBLE_FIELDS else str(value)
    return env


def sources(root: Path = REPO_ROOT) -> list[Path]:
    """What the site is built from: the pages, the config, the hooks and the tariff module they print."""
    files = [root / "mkdocs.yml", root / "portal" / "pricing" / "tariff.py", root / "portal" / "docs_site.py"]
    for folder in (root / "docs", root / "docs_hooks"):
        files += [p for p in folder.rglob("*") if p.is_file() and not _generated(p.relative_to(folder))]
    return sorted(p for p in files if p.exists())


def _generated(relative: Path) -> bool:
    return any(part == "__pycache__" or part.startswith(".") for part in relative.parts) or relative.suffix == ".pyc"


def stamp(tariff: Tariff, base_url: str, root: Path = REPO_ROOT, seal_sha256: Sequence[str] = ()) -> str:
    """SHA-256 of everything the built site depends on: sources' paths and contents, tariff, base URL, the
    published seal fingerprints, tools."""
    digest = hashlib.sha256()
    for path in sources(root):
        content = path.read_bytes()
        digest.update(f"{path.relative_to(root).as_posix()}\0{len(content)}\0".encode())
        digest.update(content)
    tools = {name: _version(name) for name in ("mkdocs", "mkdocs-material", "pymdown-extensions")}
    inputs = {"tariff": dataclasses.asdict(tariff), "site_url": site_url(base_url), "tools": tools}
    if seal_sha256:
        inputs["seal_sha256"] = list(seal_sha256)
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def built_stamp(site_dir: Path) -> str:
    """The stamp of the site in site_dir, "" when there is none."""
    try:
        return (site_dir / STAMP_NAME).read_text().strip()
    except OSError:
        return ""


def _inputs(tariff: Tariff | None, base_url: str | None,
            seal_sha256: Sequence[str] | None) -> tuple[Tariff, str, tuple[str, ...]]:
    return (tariff if tariff is not None else tariff_from_env(os.environ),
            base_url if base_url is not None else base_url_from_env(os.environ),
            tuple(seal_sha256) if seal_sha256 is not None else seal_fingerprints_from_env(os.environ))


def build(site_dir: Path, *, tariff: Tariff | None = None, base_url: str | None = None, strict: bool = True,
          root: Path = REPO_ROOT, seal_sha256: Sequence[str] | None = None) -> None:
    """mkdocs build into site_dir for this tariff, base URL and seal fingerprints (default: the environment's),
    then the stamp."""
    tariff, base_url, seal_sha256 = _inputs(tariff, base_url, seal_sha256)
    config = root / "mkdocs.yml"
    if not config.exists():
        raise FileNotFoundError(f"mkdocs.yml не найден / not found: {config}")
    site_dir = Path(site_dir)
    (site_dir / STAMP_NAME).unlink(missing_ok=True)  # a failed build leaves no valid stamp behind
    cmd = [sys.executable, "-m", "mkdocs", "build", "--quiet", "-f", str(config), "-d", str(site_dir)]
    if strict:
        cmd.append("--strict")
    env = {**os.environ, **tariff_env(tariff), "PORTAL_BASE_URL": base_url, "NO_MKDOCS_2_WARNING": "1",
           "PORTAL_SEAL_SHA256": ",".join(seal_sha256), "PORTAL_DOCS_SEAL_EXACT": "1"}
    subprocess.run(cmd, check=True, cwd=root, env=env)
    (site_dir / STAMP_NAME).write_text(stamp(tariff, base_url, root, seal_sha256) + "\n")


def ensure_built(site_dir: Path, *, tariff: Tariff | None = None, base_url: str | None = None,
                 root: Path = REPO_ROOT, seal_sha256: Sequence[str] | None = None) -> bool:
    """Build the site unless site_dir holds one built from the same sources, tariff, base URL and seal
    fingerprints.

    True when a site is there to serve. Without the sources (mkdocs.yml) nothing can be built: the site
    that is there, if any, is served as it is.
    """
    site_dir = Path(site_dir)
    if not (root / "mkdocs.yml").exists():
        return (site_dir / "index.html").exists()
    tariff, base_url, seal_sha256 = _inputs(tariff, base_url, seal_sha256)
    if (site_dir / "index.html").exists() and built_stamp(site_dir) == stamp(tariff, base_url, root, seal_sha256):
        return True
    build(site_dir, tariff=tariff, base_url=base_url, root=root, seal_sha256=seal_sha256)
    return True


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    site_dir = Path(args[0]) if args else REPO_ROOT / "site"
    build(site_dir)
    print(f"Документация собрана в {site_dir}")


if __name__ == "__main__":
    main()
