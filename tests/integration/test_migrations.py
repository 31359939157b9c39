"""Migrations: one initial migration that matches the tables, and `portal migrate` saying what it did."""

from __future__ import annotations

import asyncio
import os

import pytest

from portal import db
from portal.settings import Settings
from tests.integration.test_cli import run

INITIAL = "2026-11-25T11:08:26:048933"  # the squashed initial migration keeps the ID of the last one it replaced
REPLACED = ("2026-11-25T10:44:49:189552", "2026-11-25T10:53:51:186970")
INDEXES = "2026-11-25T12:15:00:000000"  # hand-written: unique indexes in raw SQL


def test_the_tables_match_the_migrations():
    """What `piccolo migrations new portal --auto` would write: nothing."""
    from piccolo.apps.migrations.commands.new import AutoMigrationManager

    from portal.piccolo_app import APP_CONFIG

    alter = asyncio.run(AutoMigrationManager(auto_input="y").get_alter_statements(app_config=APP_CONFIG))
    statements = [statement for group in alter for statement in group.statements]
    assert statements == [], "the tables differ from the migrations: add one (piccolo migrations new portal --auto)"


def test_one_initial_migration_then_the_indexes():
    ids = sorted(db.migration_modules())
    assert ids[:2] == [INITIAL, INDEXES]
    initial = db.migration_modules()[INITIAL]
    assert tuple(initial.REPLACES) == REPLACED
    manager = asyncio.run(initial.forwards())
    created = {table.tablename for table in manager.add_tables}
    assert created >= {"cooperative", "staff_user", "outbox_message", "audit_event", "connect_request",
                       "registration_link", "member", "member_key", "auth_challenge", "recovery_link",
                       "application", "signature_image", "document", "signature"}


def _portal_env(tmp_path, backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_DATABASE_URL": ""}
    if backend == "postgres":
        server = request.getfixturevalue("pg_server")
        env["PORTAL_DATABASE_URL"] = server.create_database(f"migrate_{os.getpid()}")
    return env


PICCOLO_CHATTER = ("already complete", "not yet run", "[forwards]", "No migrations need to be run", "ok!")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrate_says_plainly_what_it_did(tmp_path, backend, request):
    env = _portal_env(tmp_path, backend, request)
    total = len(db.migration_modules())
    r = run(["migrate"], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"База данных: применено миграций: {total}.\n"
    r2 = run(["migrate"], env)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == "База данных актуальна, новых миграций нет.\n"
    for output in (r.stdout + r.stderr, r2.stdout + r2.stderr):
        for chatter in PICCOLO_CHATTER:
            assert chatter not in output


async def _recorded(settings: Settings) -> list[str]:
    from piccolo.apps.migrations.tables import Migration

    return await Migration.get_migrations_which_ran(app_name="portal")


async def test_a_database_migrated_before_the_squash_is_up_to_date(settings: Settings):
    """Migrated with the four old migrations, a database has their IDs recorded: nothing is left to do."""
    from piccolo.apps.migrations.tables import Migration

    db.configure_database(settings)
    for old in REPLACED:
        await Migration.insert(Migration(name=old, app_name="portal")).run()
    report = await db.migrate()
    assert report.applied == () and report.summary() == "База данных актуальна, новых миграций нет."
    assert set(await _recorded(settings)) >= {*REPLACED, INITIAL, INDEXES}


async def test_a_database_migrated_part_way_by_the_old_migrations_is_refused(settings: Settings):
    """Only some of the replaced migrations applied: the initial one would collide with their tables."""
    from piccolo.apps.migrations.tables import Migration

    db.configure_database(settings)
    await Migration.delete(force=True).run()
    await Migration.insert(Migration(name=REPLACED[0], app_name="portal")).run()
    with pytest.raises(RuntimeError, match="создайте базу заново"):
        await db.migrate()
    assert await _recorded(settings) == [REPLACED[0]]


def test_migrate_refuses_a_part_way_database_in_one_line(tmp_path):
    import sqlite3

    env = {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_DATABASE_URL": ""}
    assert run(["migrate"], env).returncode == 0
    with sqlite3.connect(tmp_path / "portal.sqlite3") as conn:
        conn.execute("DELETE FROM migration")
        conn.execute("INSERT INTO migration (name, app_name) VALUES (?, 'portal')", (REPLACED[0],))
    r = run(["migrate"], env)
    assert r.returncode == 1 and r.stdout == ""
    lines = [line for line in r.stderr.splitlines() if " INFO " not in line]
    assert len(lines) == 1 and "создайте базу заново" in lines[0], r.stderr
