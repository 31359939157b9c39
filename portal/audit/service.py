"""The audit log: who (staff, member, system, visitor), what, on what, details, IP, user agent, when."""

from __future__ import annotations

from typing import Any

from litestar import Request

from portal.audit.tables import AuditEvent
from portal.clock import now


def client_ip(request: Request | None) -> str:
    if request is None or request.client is None:
        return ""
    return request.client.host or ""


async def record(
    action: str,
    *,
    actor_type: str = "system",
    actor_id: str | int = "",
    actor_label: str = "",
    object_type: str = "",
    object_id: str | int = "",
    details: dict[str, Any] | None = None,
    request: Request | None = None,
) -> None:
    """Write one audit event (inside the caller's transaction, if any)."""
    await AuditEvent.insert(
        AuditEvent(
            actor_type=actor_type,
            actor_id=str(actor_id),
            actor_label=actor_label,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=details or {},
            ip=client_ip(request),
            user_agent=(request.headers.get("user-agent", "") if request else "")[:1000],
            created_at=now(),
        )
    )
