"""Production mode: no /dev/mail, secure cookies."""

from __future__ import annotations

import httpx

from portal import db
from portal.app import create_app, startup
from tests.conftest import make_settings


async def test_production_has_no_dev_mail_and_secure_cookies(tmp_path, sqlite_template):
    import shutil

    shutil.copyfile(sqlite_template, tmp_path / "portal.sqlite3")
    settings = make_settings(tmp_path, PORTAL_ENV="production", PORTAL_BASE_URL="https://portal.example")
    app = create_app(settings, run_mail_sender=False)
    await startup(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.example") as client:
            r = await client.get("/dev/mail")
            assert r.status_code == 404
            r = await client.get("/")
            assert "Secure" in r.headers["set-cookie"]
            assert r.headers["strict-transport-security"].startswith("max-age=")
    finally:
        await db.stop(settings)
