"""The store shared by every portal process: sessions and rate-limit counters.

In the database by default (the table kv_store); in Redis/Valkey when PORTAL_REDIS_URL is set. Both speak
Litestar's Store interface, so the rate limiter and the session middleware do not know which one it is.
"""

from __future__ import annotations

import datetime as dt

from litestar.stores.base import Store

from portal.clock import now
from portal.sessions.tables import StoreEntry
from portal.settings import Settings


def _seconds(expires_in: int | dt.timedelta | None) -> dt.timedelta | None:
    if expires_in is None:
        return None
    return expires_in if isinstance(expires_in, dt.timedelta) else dt.timedelta(seconds=expires_in)


class DatabaseStore(Store):
    """Litestar's Store on the portal's own database: one indexed lookup per get."""

    def __init__(self, namespace: str = "") -> None:
        self.namespace = namespace

    def with_namespace(self, namespace: str) -> "DatabaseStore":
        return DatabaseStore(f"{self.namespace}{namespace}:")

    def _key(self, key: str) -> str:
        return self.namespace + key

    async def set(self, key: str, value: str | bytes, expires_in: int | dt.timedelta | None = None) -> None:
        ttl = _seconds(expires_in)
        data = value.encode() if isinstance(value, str) else value
        entry = StoreEntry(key=self._key(key), value=data, expires_at=now() + ttl if ttl else None)
        await StoreEntry.insert(entry).on_conflict(
            target=StoreEntry.key, action="DO UPDATE", values=[StoreEntry.value, StoreEntry.expires_at])

    async def get(self, key: str, renew_for: int | dt.timedelta | None = None) -> bytes | None:
        # Raw SQL: this lookup runs on every request with a session; Piccolo's query building costs more than it.
        rows = await StoreEntry.raw("SELECT value, expires_at FROM kv_store WHERE key = {}", self._key(key))
        row = rows[0] if rows else None
        if row is None or (row["expires_at"] is not None and row["expires_at"] <= now()):
            return None
        ttl = _seconds(renew_for)
        if ttl and row["expires_at"] is not None:
            await StoreEntry.update({StoreEntry.expires_at: now() + ttl}).where(StoreEntry.key == self._key(key))
        return bytes(row["value"])

    async def delete(self, key: str) -> None:
        await StoreEntry.delete().where(StoreEntry.key == self._key(key))

    async def delete_all(self) -> None:
        if not self.namespace:
            await StoreEntry.delete(force=True)
        else:
            await StoreEntry.delete().where(StoreEntry.key.like(self.namespace.replace("%", r"\%") + "%"))

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = await StoreEntry.select(StoreEntry.expires_at).where(StoreEntry.key == self._key(key)).first()
        if row is None or row["expires_at"] is None:
            return None
        return max(int((row["expires_at"] - now()).total_seconds()), 0)


async def delete_expired() -> None:
    """Housekeeping: expired rows are never read, this frees their space (the worker calls it)."""
    await StoreEntry.delete().where(StoreEntry.expires_at < now())


def make_store(settings: Settings) -> Store:
    """The shared store of this portal: Redis/Valkey when configured, else the database."""
    if settings.redis_url:
        from litestar.stores.redis import RedisStore

        return RedisStore.with_client(url=settings.redis_url, namespace="portal")
    return DatabaseStore()


async def run_housekeeping(stop, tasks=(delete_expired,), every_seconds: float = 600) -> None:
    """The worker's loop of clean-ups (by default: expired sessions and counters of the database store)."""
    import asyncio
    import logging

    while not stop.is_set():
        for task in tasks:
            try:
                await task()
            except Exception:  # the loop must survive a database hiccup
                logging.getLogger("portal").exception("housekeeping %s failed", task.__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
        except asyncio.TimeoutError:
            pass
