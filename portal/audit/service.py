"""The audit log: who (staff, member, system, visitor), what, on what, details, IP, user agent, when."""

from __future__ import annotations

from typing import Any

from portal.audit.tables import AuditEvent
from portal.clock import now
from portal.origin import SYSTEM, Origin


async def record(
    action: str,
    *,
    actor_type: str = "system",
    actor_id: str | int = "",
    actor_label: str = "",
    object_type: str = "",
    object_id: str | int = "",
    details: dict[str, Any] | None = None,
    origin: Origin = SYSTEM,
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
            ip=origin.ip,
            user_agent=origin.user_agent,
            created_at=now(),
        )
    )


async def events_of(object_type: str, object_id: str | int) -> list[dict]:
    """The history of one object (a connect request, an application …), oldest first."""
    return await AuditEvent.select().where(
        (AuditEvent.object_type == object_type) & (AuditEvent.object_id == str(object_id))).order_by(AuditEvent.id)
