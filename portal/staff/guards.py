"""Who the staff member of this request is: the guard of staff pages and the `staff` dependency."""

from __future__ import annotations

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from portal.staff.tables import StaffUser
from portal.web import LoginRequired


async def staff_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Staff pages: an active staff account whose sessions were not ended; a member gets 403, anyone else the
    login page. The account is looked up once per request and handed to the `staff` dependency."""
    session = connection.scope.get("session") or {}
    staff_id = session.get("staff_id")
    if staff_id:
        rows = await StaffUser.raw("SELECT id, email, is_active, sessions_epoch FROM staff_user WHERE id = {}",
                                   staff_id)
        row = rows[0] if rows else None
        if row and row["is_active"] and row["sessions_epoch"] == session.get("epoch", 0):
            connection.state.staff = row
            return
        connection.scope["session"] = {}
    if session.get("member_id"):
        raise PermissionDeniedException()
    raise LoginRequired("/staff/login", connection.url.path)


def current_staff(request: Request) -> dict:
    return request.state.staff


def log_in(request: Request, staff: dict) -> None:
    request.set_session({"staff_id": staff["id"], "staff_email": staff["email"], "epoch": staff["sessions_epoch"]})


async def end_all_sessions(staff_id: int) -> None:
    await StaffUser.update({StaffUser.sessions_epoch: StaffUser.sessions_epoch + 1}).where(StaffUser.id == staff_id)
