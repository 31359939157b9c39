"""Shared fixtures: settings on a fresh database (SQLite or a throwaway PostgreSQL), the app, its client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx
import pytest

from portal import db
from portal.settings import Settings, load_settings
from tests.support.postgres import PostgresServer, start_postgres

CACHE_DIR = Path(__file__).parent / ".cache"
_counter = itertools.count()


def make_settings(data_dir: Path, database_url: str = "", **env: str) -> Settings:
    environ = {
        "PORTAL_ENV": "dev",
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_SECRET_KEY": "test-secret-key-with-enough-entropy-0123456789",
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_BASE_URL": "http://testserver.local",
        **env,
    }
    return load_settings(environ)


def _migrate(settings: Settings) -> None:
    async def run() -> None:
        db.configure_database(settings)
        await db.migrate()

    # In a thread of its own: the caller's thread may already run an event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


# Tests put their data in temporary directories: a run must not leave the portal's default data dir behind.
_DEFAULT_DATA = ("var", "var/secret_key", "var/portal.sqlite3")
_existed_before: dict[str, bool] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _existed_before.update({name: (Path.cwd() / name).exists() for name in _DEFAULT_DATA})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    created = [name for name, existed in _existed_before.items() if not existed and (Path.cwd() / name).exists()]
    if created:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("!", f"the run created {', '.join(created)} in {Path.cwd()} "
                               "(tests must use temporary data dirs)", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps a loop running in the main thread until its session ends."""
    items.sort(key=lambda item: "/e2e/" in str(item.path))


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="portal-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(session_dir: Path) -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(session_dir: Path) -> Path:
    """A migrated SQLite file, copied for each test."""
    data_dir = session_dir / "sqlite-template"
    settings = make_settings(data_dir)
    _migrate(settings)
    return settings.sqlite_path


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresServer, session_dir: Path) -> str:
    """A migrated PostgreSQL database used as the template of each test's database."""
    pg_server.create_database("portal_template")
    _migrate(make_settings(session_dir / "pg-template", pg_server.dsn("portal_template")))
    return "portal_template"


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh, migrated database: every integration test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "portal.sqlite3")
        yield make_settings(tmp_path)
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        template = request.getfixturevalue("pg_template")
        name = f"test_{next(_counter)}"
        server.create_database(name, template=template)
        yield make_settings(tmp_path, server.dsn(name))
        server.drop_database(name)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from portal.app import create_app, startup

    app = create_app(settings, run_mail_sender=False)
    # The app runs in the test's own event loop, so tests may query the database directly.
    await startup(settings)
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            yield c
    finally:
        await db.stop(settings)


async def csrf_token(client: httpx.AsyncClient, path: str = "/") -> str:
    """The CSRF token the portal gives the browser (cookie), to send back as a form field or header."""
    if "csrftoken" not in client.cookies:
        await client.get(path)
    return client.cookies["csrftoken"]


async def post_form(client: httpx.AsyncClient, path: str, data: dict, *, htmx: bool = False, **kwargs):
    token = await csrf_token(client)
    headers = {"HX-Request": "true"} if htmx else {}
    return await client.post(path, data={**data, "_csrf_token": token}, headers=headers, **kwargs)


@pytest.fixture(scope="session")
def session_site(session_dir: Path) -> Path:
    """The documentation site, built once (mkdocs build --strict) for the tests that serve it."""
    from portal import docs_site

    site = session_dir / "site"
    docs_site.build(site)
    return site
