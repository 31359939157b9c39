from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency, Provide
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal.audit.service import events_of
from portal.origin import origin_of
from portal.connect import forms, service
from portal.requisites import domain_display
from portal.staff.guards import current_staff, staff_guard
from portal.web import PageError, is_htmx, post_rate_limit, redirect, render

CONNECT_LIMIT = post_rate_limit("connect", 20)
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _form_context(form: forms.ConnectForm) -> dict:
    return {"form": form, "unions": forms.UNION_CHOICES, "labels": forms.LABELS}


class ConnectController(Controller):
    path = "/connect"

    @get("/")
    async def form(self, request: Request) -> object:
        return render(request, "connect/form.html", _form_context(forms.empty_form()), block="connect_form")

    @post("/", middleware=[CONNECT_LIMIT.middleware])
    async def submit(self, request: Request, data: Form) -> object:
        form = forms.validate(data)
        if not form.valid:
            return render(request, "connect/form.html", _form_context(form), block="connect_form", status_code=422)
        result = await service.submit(request.app.state.settings, form.clean, origin_of(request).ip)
        context = {"request_id": result.request_id, "duplicate": result.duplicate, "coop_name": form.clean["coop_name"],
                   "inn": form.clean["inn"], "email": form.clean["email"]}
        if is_htmx(request):
            return render(request, "connect/done.html", context, block="connect_done")
        request.session["connect_done"] = context
        return redirect("/connect/done")

    @get("/done")
    async def done(self, request: Request) -> object:
        context = request.session.get("connect_done")
        if not context:
            return redirect("/connect")
        return render(request, "connect/done.html", context)


class StaffConnectController(Controller):
    path = "/staff/connect-requests"
    guards = [staff_guard]
    dependencies = {"staff": Provide(current_staff, sync_to_thread=False)}

    @get("/")
    async def index(self, request: Request) -> object:
        status = request.query_params.get("status", "new")
        query = request.query_params.get("q", "")
        rows = await service.list_requests(status if status != "all" else None, query)
        context = {"rows": rows, "status": status, "q": query, "labels": service.STATUS_LABELS,
                   "counts": await service.counts()}
        return render(request, "connect/staff_list.html", context, block="results")

    @get("/{request_id:int}")
    async def detail(self, request: Request, request_id: FromPath[int]) -> object:
        return await self._detail(request, request_id)

    async def _detail(self, request: Request, request_id: int, *, error: str | None = None,
                      reason: str = "", status_code: int = 200) -> object:
        row = await service.get(request_id)
        if row is None:
            raise PageError(status_code=404, detail="Такой заявки нет.")
        events = await events_of("connect_request", request_id)
        context = {"r": row, "labels": service.STATUS_LABELS, "unions": forms.UNION_CHOICES,
                   "domain": domain_display(row["domain"]), "events": events, "error": error, "reason": reason,
                   "sent": request.query_params.get("sent")}
        return render(request, "connect/staff_detail.html", context, status_code=status_code)

    @post("/{request_id:int}/invite")
    async def invite(self, request: Request, request_id: FromPath[int], staff: NamedDependency[dict]) -> object:
        try:
            await service.send_registration_link(request.app.state.settings, request_id, staff, origin_of(request))
        except service.ReviewError as exc:
            return await self._detail(request, request_id, error=str(exc), status_code=422)
        return redirect(f"/staff/connect-requests/{request_id}?sent=link")

    @post("/{request_id:int}/reject")
    async def reject(self, request: Request, request_id: FromPath[int], data: Form, staff: NamedDependency[dict]) -> object:
        reason = " ".join((data.get("reason") or "").split())
        if len(reason) < 5:
            return await self._detail(request, request_id, error="Укажите причину отказа — её получит заявитель "
                                      "(не короче 5 символов).", reason=data.get("reason", ""), status_code=422)
        try:
            await service.reject(request_id, reason, staff, origin_of(request), settings=request.app.state.settings)
        except service.ReviewError as exc:
            return await self._detail(request, request_id, error=str(exc), status_code=422)
        return redirect(f"/staff/connect-requests/{request_id}?sent=reject")
