from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body

from portal.audit.service import record
from portal.origin import origin_of
from portal.staff import service
from portal.staff.guards import current_staff, end_all_sessions, log_in, staff_guard
from portal.web import post_rate_limit, redirect, render

LOGIN_LIMIT = post_rate_limit("staff_login", 10)


def _safe_next(path: str | None) -> str:
    return path if path and path.startswith("/staff") and not path.startswith("//") else "/staff/"


class StaffAuthController(Controller):
    path = "/staff"

    @get("/login")
    async def login_page(self, request: Request) -> object:
        next_path = _safe_next(request.query_params.get("next"))
        return render(request, "staff/login.html", {"next_path": next_path, "email": "", "error": None,
                                                    "ended": request.query_params.get("ended")})

    @post("/login", middleware=[LOGIN_LIMIT.middleware])
    async def login(
        self, request: Request, data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
    ) -> object:
        email, password = data.get("email", ""), data.get("password", "")
        next_path = _safe_next(data.get("next"))
        user = await service.authenticate(email, password) if email and password else None
        if user is None:
            await record("staff.login_failed", actor_type="visitor", actor_label=email[:255],
                         origin=origin_of(request))
            context = {"next_path": next_path, "email": email, "error": "Неверная почта или пароль."}
            return render(request, "staff/login.html", context, block="login_form", status_code=422)
        log_in(request, user)
        await record("staff.login", actor_type="staff", actor_id=user["id"], actor_label=user["email"],
                     origin=origin_of(request))
        if request.headers.get("hx-request"):
            from litestar.plugins.htmx import ClientRedirect

            return ClientRedirect(redirect_to=next_path)
        return redirect(next_path)

    @post("/logout")
    async def logout(self, request: Request) -> object:
        staff_id = request.session.get("staff_id")
        if staff_id:
            await record("staff.logout", actor_type="staff", actor_id=staff_id, origin=origin_of(request))
        request.clear_session()
        return redirect("/staff/login")

    @post("/logout/all", guards=[staff_guard])
    async def logout_everywhere(self, request: Request) -> object:
        """«Выйти на всех устройствах»: every session of this staff account ends now, on every process."""
        staff = current_staff(request)
        await end_all_sessions(staff["id"])
        await record("staff.logout_all", actor_type="staff", actor_id=staff["id"], actor_label=staff["email"],
                     origin=origin_of(request))
        request.clear_session()
        return redirect("/staff/login?ended=all")


class StaffConsoleController(Controller):
    path = "/staff"
    guards = [staff_guard]
    dependencies = {"staff": Provide(current_staff, sync_to_thread=False)}

    @get("/")
    async def console(self, request: Request, staff: NamedDependency[dict]) -> object:
        counts = await service.queue_counts()
        context = {"staff_email": staff["email"], "connect_counts": counts["connect_requests"],
                   "applications": counts["applications"], "invoices": counts["invoices"],
                   "payments": counts["payments"], "connections": counts["connections"],
                   "deployments": counts["deployments"], "installations": counts["installations"]}
        return render(request, "staff/index.html", context)
