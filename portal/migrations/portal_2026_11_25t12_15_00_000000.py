"""Uniqueness the services rely on, also when two processes race: one application per member, one pending
connect request per ИНН (a partial index: SQLite and PostgreSQL both have them)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T12:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique application per member, one pending connect request per inn"

STATEMENTS = [
    "CREATE UNIQUE INDEX IF NOT EXISTS application_member_unique ON application (member)",
    "CREATE UNIQUE INDEX IF NOT EXISTS connect_request_pending_inn_unique ON connect_request (inn) "
    "WHERE status IN ('new', 'invited')",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def create_indexes():
        for sql in STATEMENTS:
            await engine_finder().run_ddl(sql)

    async def drop_indexes():
        for name in ("application_member_unique", "connect_request_pending_inn_unique"):
            await engine_finder().run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
