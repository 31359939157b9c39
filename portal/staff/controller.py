from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from portal.audit.service import record
from portal.staff import service
from portal.staff.tables import StaffUser
from portal.web import post_rate_limit, redirect, render, staff_guard

LOGIN_LIMIT = post_rate_limit("staff_login", 10)


def _safe_next(path: str | None) -> str:
    return path if path and path.startswith("/staff") and not path.startswith("//") else "/staff/"


class StaffAuthController(Controller):
    path = "/staff"

    @get("/login")
    async def login_page(self, request: Request) -> object:
        next_path = _safe_next(request.query_params.get("next"))
        return render(request, "staff/login.html", {"next_path": next_path, "email": "", "error": None})

    @post("/login", middleware=[LOGIN_LIMIT.middleware])
    async def login(
        self, request: Request, data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
    ) -> object:
        email, password = data.get("email", ""), data.get("password", "")
        next_path = _safe_next(data.get("next"))
        user = await service.authenticate(email, password) if email and password else None
        if user is None:
            await record("staff.login_failed", actor_type="visitor", actor_label=email[:255], request=request)
            context = {"next_path": next_path, "email": email, "error": "Неверная почта или пароль."}
            return render(request, "staff/login.html", context, block="login_form", status_code=422)
        request.session.clear()
        request.set_session({"staff_id": user["id"], "staff_email": user["email"]})
        await record("staff.login", actor_type="staff", actor_id=user["id"], actor_label=user["email"], request=request)
        if request.headers.get("hx-request"):
            from litestar.plugins.htmx import ClientRedirect

            return ClientRedirect(redirect_to=next_path)
        return redirect(next_path)

    @post("/logout")
    async def logout(self, request: Request) -> object:
        staff_id = request.session.get("staff_id")
        if staff_id:
            await record("staff.logout", actor_type="staff", actor_id=staff_id, request=request)
        request.clear_session()
        return redirect("/staff/login")


class StaffConsoleController(Controller):
    path = "/staff"
    guards = [staff_guard]

    @get("/")
    async def console(self, request: Request) -> object:
        counts = await service.queue_counts()
        context = {"staff_email": request.session.get("staff_email", ""),
                   "connect_counts": counts["connect_requests"], "applications": counts["applications"]}
        return render(request, "staff/index.html", context)


async def current_staff(request: Request) -> dict | None:
    staff_id = request.session.get("staff_id")
    if not staff_id:
        return None
    return await StaffUser.select().where(StaffUser.id == staff_id).first()
