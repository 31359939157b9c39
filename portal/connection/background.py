"""What runs by itself (inside `portal serve` and `portal worker`): the DNS of pending domains is checked, and a
hosted connection that is approved and whose domain points at the server gets provisioned."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger("portal.connection")


async def start_if_ready(settings, connection: dict) -> dict:
    """Provisioning starts once both are true: the connection approved, the domain delegated (idempotent)."""
    from portal.connection import provision

    if (connection["status"] == "approved" and connection["hosting"] == "hosted"
            and connection["dns_status"] == "delegated"):
        await provision.enqueue(settings, connection["id"])
    return connection


async def check_dns(settings, connection_id: int) -> dict:
    """«Проверить сейчас»: the domain looked up now; provisioning starts when it is due."""
    from portal.connection import dns

    return await start_if_ready(settings, await dns.check_connection(settings, connection_id))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def tick(settings) -> None:
    from portal.connection import dns, provision

    for row in await dns.check_pending(settings):
        await start_if_ready(settings, row)
    await provision.run_pending(settings, worker_id())


async def run_connections(settings, stop: asyncio.Event) -> None:
    """The loop; it survives a database hiccup or a failing provisioner (the job records the failure)."""
    while not stop.is_set():
        try:
            await tick(settings)
        except Exception:
            log.exception("connection background tasks failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.mail_poll_seconds)
        except asyncio.TimeoutError:
            pass
