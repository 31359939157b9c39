"""Database engine (SQLite by default, PostgreSQL by URL), migrations and transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory
from piccolo.table import Table

from portal.settings import Settings


def all_tables() -> list[type[Table]]:
    from portal.accounts.tables import (
        AuthChallenge, Member, MemberKey, PepAcceptance, PepAcceptancePending, RecoveryLink,
    )
    from portal.admissions.tables import AdmissionDecision
    from portal.applications.tables import Application
    from portal.audit.tables import AuditEvent
    from portal.connect.tables import ConnectRequest, RegistrationLink
    from portal.connection.tables import ApiToken, Connection, DomainClaim, ProvisionJob
    from portal.installation.tables import CouncilMember, Installation, Invitation
    from portal.documents.tables import Document, Signature, SignatureImage
    from portal.cooperatives.tables import Cooperative
    from portal.mail.tables import OutboxMessage
    from portal.payments.tables import Invoice, Payment
    from portal.sessions.tables import StoreEntry
    from portal.staff.tables import StaffUser

    return [
        Cooperative, StaffUser, OutboxMessage, AuditEvent, ConnectRequest, RegistrationLink,
        Member, MemberKey, AuthChallenge, RecoveryLink, Application, SignatureImage, Document, Signature, StoreEntry,
        PepAcceptance, PepAcceptancePending, Invoice, Payment, AdmissionDecision,
        Connection, DomainClaim, ProvisionJob, ApiToken, Installation, CouncilMember, Invitation,
    ]


POOL_SIZE = 4
ACQUIRE_TIMEOUT = 60.0


class _PooledConnection:
    """A connection lent by the pool to a transaction: Piccolo closes it at the end, which gives it back."""

    def __init__(self, connection: aiosqlite.Connection, engine: "PooledSQLiteEngine"):
        self._connection = connection
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def close(self) -> None:
        await self._engine.release(self._connection)


class _PooledTransaction(SQLiteTransaction):
    """Piccolo's transaction, but the pooled connection goes back even when BEGIN, COMMIT or ROLLBACK fails
    (a lock held longer than the busy timeout), so the pool never shrinks."""

    async def __aenter__(self):
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            await self.begin()
        except BaseException:
            await self.connection.close()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type, exception, traceback) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            await self.connection.close()
            self.engine.current_transaction.reset(self.context)
        return exception is None


class PooledSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine opens a connection (and a thread) for every query; this one keeps a few open.

    The pool lives between start_connection_pool() and close_connection_pool(), in one event loop; outside
    of it (migrations, commands) queries fall back to Piccolo's connection per query.
    """

    def __init__(self, path: str, **kwargs: Any):
        super().__init__(path=path, **kwargs)
        self._idle: asyncio.LifoQueue[aiosqlite.Connection] | None = None
        self._all: list[aiosqlite.Connection] = []
        self.connections_opened = 0

    async def _open(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(**self.connection_kwargs)
        connection.row_factory = dict_factory  # type: ignore[assignment]
        await connection.execute("PRAGMA foreign_keys = 1")
        self.connections_opened += 1
        return connection

    async def start_connection_pool(self, max_size: int = POOL_SIZE) -> None:
        self._idle = asyncio.LifoQueue()
        for _ in range(max_size):
            connection = await self._open()
            self._all.append(connection)
            self._idle.put_nowait(connection)

    async def close_connection_pool(self) -> None:
        connections, self._all, self._idle = self._all, [], None
        for connection in connections:
            await connection.close()

    async def acquire(self) -> aiosqlite.Connection:
        assert self._idle is not None
        try:  # all connections busy longer than SQLite's own busy timeout: something is stuck, say so
            return await asyncio.wait_for(self._idle.get(), timeout=ACQUIRE_TIMEOUT)
        except asyncio.TimeoutError:
            raise sqlite3.OperationalError("no free database connection in the pool") from None

    async def release(self, connection: aiosqlite.Connection) -> None:
        if self._idle is None or connection not in self._all:
            await connection.close()
            return
        if connection.in_transaction:  # a cancelled request left its transaction open
            await connection.rollback()
        self._idle.put_nowait(connection)

    async def get_connection(self):
        if self._idle is None:
            return await super().get_connection()
        return _PooledConnection(await self.acquire(), self)

    async def _run_in_new_connection(self, query: str, args: list[Any] | None = None, query_type: str = "generic",
                                     table: Any = None):
        if self._idle is None:
            return await super()._run_in_new_connection(query, args, query_type, table)
        connection = await self.acquire()
        try:
            async with connection.execute(query, args or []) as cursor:
                return await cursor.fetchall()
        finally:
            await self.release(connection)

    def transaction(self, transaction_type: TransactionType = TransactionType.deferred,
                    allow_nested: bool = True) -> SQLiteTransaction:
        return _PooledTransaction(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)

    async def _run_in_existing_connection(self, connection, query: str, args: list[Any] | None = None,
                                          query_type: str = "generic", table: Any = None):
        if not isinstance(connection, _PooledConnection):
            return await super()._run_in_existing_connection(connection, query, args, query_type, table)
        async with connection.execute(query, args or []) as cursor:  # foreign keys are on since the connection opened
            return await cursor.fetchall()


def make_engine(settings: Settings) -> Engine:
    if settings.is_postgres:
        return PostgresEngine(config={"dsn": settings.database_url}, extensions=())
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:  # WAL is persistent in the file
        conn.execute("PRAGMA journal_mode=WAL")
    # isolation_level None (Piccolo's default): autocommit, transactions are explicit BEGIN … COMMIT.
    return PooledSQLiteEngine(path=str(path), timeout=30)


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


@dataclass(frozen=True)
class MigrationReport:
    """What migrate() did: the IDs it applied (in order) and how many migrations the portal has."""

    applied: tuple[str, ...]
    total: int

    def summary(self) -> str:
        if self.applied:
            return f"База данных: применено миграций: {len(self.applied)}."
        return "База данных актуальна, новых миграций нет."


def migration_modules() -> dict[str, ModuleType]:
    """The portal's migrations (portal/migrations/*.py) by their ID."""
    import importlib
    import pkgutil

    import portal.migrations as package

    modules: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if getattr(module, "ID", None):
            modules[module.ID] = module
    return modules


async def migrate() -> MigrationReport:
    """Apply the portal's pending migrations to the configured database, in ID order, printing nothing.

    Piccolo's run_forwards() does the same but prints its progress ("4 migrations already complete"…);
    here the caller says what was done, from the report. A migration that REPLACES older ones (the
    squashed initial one) is refused on a database where only some of those were applied.
    """
    import contextlib
    import io

    from piccolo.apps.migrations.auto.migration_manager import MigrationManager
    from piccolo.apps.migrations.tables import Migration

    modules = migration_modules()
    if not await Migration.table_exists().run():
        await Migration.create_table().run()
    done = set(await Migration.get_migrations_which_ran(app_name="portal"))
    applied: list[str] = []
    for migration_id in sorted(set(modules) - done):
        module = modules[migration_id]
        replaced = sorted(done & set(getattr(module, "REPLACES", ())))
        if replaced:
            raise RuntimeError(
                f"Миграции не применены: база данных создана старыми миграциями ({', '.join(replaced)}), "
                f"которые заменены миграцией {migration_id}; создайте базу заново "
                "/ the database was migrated part way with migrations since squashed: recreate it"
            )
        manager = await module.forwards()
        if isinstance(manager, MigrationManager) and not manager.fake:
            with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints "  - ID [forwards]... "
                await manager.run()
        await Migration.insert(Migration(name=migration_id, app_name="portal")).run()
        applied.append(migration_id)
    return MigrationReport(applied=tuple(applied), total=len(modules))


async def start(settings: Settings) -> None:
    """Open the connection pool of this process (SQLite: a few kept connections; PostgreSQL: asyncpg's pool)."""
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.start_connection_pool(min_size=1, max_size=10)
    elif isinstance(db, PooledSQLiteEngine):
        await db.start_connection_pool()


async def stop(settings: Settings) -> None:
    db = engine()
    if isinstance(db, PostgresEngine) and db.pool is not None:
        await db.close_connection_pool()
    elif isinstance(db, PooledSQLiteEngine):
        await db.close_connection_pool()


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
