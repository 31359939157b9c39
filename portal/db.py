"""Database engine (SQLite by default, PostgreSQL by URL), migrations and transactions."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import AsyncIterator

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

from portal.settings import Settings


def all_tables() -> list[type[Table]]:
    from portal.accounts.tables import AuthChallenge, Member, MemberKey, RecoveryLink
    from portal.applications.tables import Application
    from portal.audit.tables import AuditEvent
    from portal.connect.tables import ConnectRequest, RegistrationLink
    from portal.documents.tables import Document, Signature, SignatureImage
    from portal.cooperatives.tables import Cooperative
    from portal.mail.tables import OutboxMessage
    from portal.staff.tables import StaffUser

    return [
        Cooperative, StaffUser, OutboxMessage, AuditEvent, ConnectRequest, RegistrationLink,
        Member, MemberKey, AuthChallenge, RecoveryLink, Application, SignatureImage, Document, Signature,
    ]


def make_engine(settings: Settings) -> Engine:
    if settings.is_postgres:
        return PostgresEngine(config={"dsn": settings.database_url}, extensions=())
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:  # WAL is persistent in the file
        conn.execute("PRAGMA journal_mode=WAL")
    return SQLiteEngine(path=str(path), timeout=30)


def configure_database(settings: Settings) -> Engine:
    """Point Piccolo (its conf module, every table, the migrations table) at the settings' database."""
    from piccolo.apps.migrations.tables import Migration

    import portal.piccolo_conf as conf

    engine = make_engine(settings)
    conf.DB = engine
    for table in [*all_tables(), Migration]:
        table._meta.db = engine
    return engine


def engine() -> Engine:
    import portal.piccolo_conf as conf

    return conf.DB


async def migrate() -> None:
    """Apply pending migrations of the portal app to the configured database."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards(app_name="portal", migration_id="all", fake=False)
    if not result.success:
        raise RuntimeError(f"Миграции не применены / migrations failed: {result.message}")


async def start(settings: Settings) -> None:
    if settings.is_postgres:
        await engine().start_connection_pool(min_size=1, max_size=10)


async def stop(settings: Settings) -> None:
    if settings.is_postgres:
        await engine().close_connection_pool()


def is_unique_violation(exc: BaseException) -> bool:
    """A unique constraint refused the write (SQLite or PostgreSQL)."""
    import asyncpg

    return isinstance(exc, (sqlite3.IntegrityError, asyncpg.UniqueViolationError))


def transaction():
    """A write transaction: IMMEDIATE on SQLite so that concurrent writers wait instead of failing."""
    db = engine()
    if isinstance(db, SQLiteEngine):
        return db.transaction(transaction_type=TransactionType.immediate)
    return db.transaction()


async def ping() -> bool:
    try:
        rows = await engine().run_ddl("SELECT 1 AS ok")
    except Exception:
        return False
    return bool(rows)
