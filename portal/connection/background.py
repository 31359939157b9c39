"""What runs by itself (inside `portal worker`, which `portal serve` starts): the DNS of pending domains is
checked, and a hosted connection that is approved and whose domain points at the server gets provisioned.

Two loops, so that a long provisioning command never holds up the DNS checks of other cooperatives."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("portal.connection")


async def start_if_ready(settings, connection: dict) -> dict:
    """Provisioning starts once both are true: the connection approved, the domain delegated (idempotent). A job
    that failed because the domain did not point here yet (the «Сервер» stage) is retried once it does."""
    from portal.connection import provision

    if (connection["status"] == "approved" and connection["hosting"] == "hosted"
            and connection["dns_status"] == "delegated"):
        job = await provision.enqueue(settings, connection["id"])
        if job and job["status"] == "failed" and job["stage"] == "server":
            await provision.retry(job["id"])
    return connection


async def check_dns(settings, connection_id: int) -> dict:
    """«Проверить сейчас»: the domain looked up now; provisioning starts when it is due."""
    from portal.connection import dns

    return await start_if_ready(settings, await dns.check_connection(settings, connection_id))


async def check_domains(settings) -> None:
    from portal.connection import dns

    for row in await dns.check_pending(settings):
        await start_if_ready(settings, row)


async def tick(settings) -> None:
    """One round of both loops (what the tests run instead of waiting)."""
    from portal.connection import provision

    await check_domains(settings)
    await provision.run_pending(settings, provision.worker_name())


async def _loop(name: str, work, settings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await work()
        except Exception:  # the loop survives a database hiccup; a failing provisioner is recorded on its job
            log.exception("%s failed", name)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.mail_poll_seconds)
        except asyncio.TimeoutError:
            pass


async def run_connections(settings, stop: asyncio.Event) -> None:
    from portal.connection import provision

    worker = provision.worker_name()
    await asyncio.gather(
        _loop("domain checks", lambda: check_domains(settings), settings, stop),
        _loop("provisioning", lambda: provision.run_pending(settings, worker), settings, stop),
    )
