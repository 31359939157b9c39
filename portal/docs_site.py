"""The MkDocs Material site: built from docs/ + mkdocs.yml, served by the portal under /docs/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portal.settings import REPO_ROOT


def build(site_dir: Path, strict: bool = True) -> None:
    config = REPO_ROOT / "mkdocs.yml"
    if not config.exists():
        raise FileNotFoundError(f"mkdocs.yml не найден / not found: {config}")
    cmd = [sys.executable, "-m", "mkdocs", "build", "--quiet", "-f", str(config), "-d", str(site_dir)]
    if strict:
        cmd.append("--strict")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(cmd, check=True, cwd=REPO_ROOT, env=env)


def sources() -> list[Path]:
    """What the site is built from: the pages, the config, the pricing hook and the tariff it prints."""
    files = [REPO_ROOT / "mkdocs.yml", REPO_ROOT / "portal" / "pricing" / "tariff.py"]
    for folder in (REPO_ROOT / "docs", REPO_ROOT / "docs_hooks"):
        files += [p for p in folder.rglob("*") if p.is_file()]
    return [p for p in files if p.exists()]


def ensure_built(site_dir: Path) -> bool:
    """Build the site when it is missing or older than its sources; True when a site is there to serve."""
    if not (REPO_ROOT / "mkdocs.yml").exists():
        return (site_dir / "index.html").exists()
    index = site_dir / "index.html"
    if index.exists() and index.stat().st_mtime >= max(p.stat().st_mtime for p in sources()):
        return True
    build(site_dir)
    return True
