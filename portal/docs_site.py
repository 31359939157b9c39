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


def ensure_built(site_dir: Path) -> bool:
    """Build the site when it is missing; True when a site is there to serve."""
    if (site_dir / "index.html").exists():
        return True
    if not (REPO_ROOT / "mkdocs.yml").exists():
        return False
    build(site_dir)
    return True
