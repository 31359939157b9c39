"""Staff: admission — applicants whose fees are paid, «Принять в пайщики» and «Отказать» (the council's decision)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, post, get
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal.admissions import service
from portal.applications.forms import APPLICANT_TYPES
from portal.documents.templates import date_ru, rub
from portal.origin import origin_of
from portal.staff.guards import current_staff, staff_guard
from portal.web import redirect, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

NOTICES = {
    "admitted": "Решение о приёме принято: документ скреплён печатью и лежит в «Моих документах» пайщика, письмо "
                "отправлено.",
    "refused": "Отказ записан, заявителю отправлено письмо с причиной и суммой к возврату.",
}


class StaffAdmissionsController(Controller):
    path = "/staff/admissions"
    guards = [staff_guard]
    dependencies = {"staff": Provide(current_staff, sync_to_thread=False)}

    async def _page(self, request: Request, *, errors: dict[int, dict[str, str]] | None = None,
                    reasons: dict[int, str] | None = None, error: str | None = None,
                    status_code: int = 200) -> object:
        context = {"candidates": await service.candidates(), "decisions": await service.recent_decisions(),
                   "errors": errors or {}, "reasons": reasons or {}, "types": APPLICANT_TYPES, "rub": rub, "ru_date": date_ru,
                   "labels": service.DECISION_LABELS, "error": error,
                   "notice": NOTICES.get(request.query_params.get("done", ""))}
        return render(request, "admissions/staff_list.html", context, status_code=status_code)

    @get("/")
    async def index(self, request: Request) -> object:
        return await self._page(request)

    @post("/{application_id:int}/admit")
    async def admit(self, request: Request, application_id: FromPath[int], staff: NamedDependency[dict]) -> object:
        try:
            await service.admit(request.app.state.settings, application_id, staff, origin_of(request))
        except service.AdmissionError as exc:
            status = 409 if str(exc) == service.ALREADY else 422
            return await self._page(request, error=str(exc), status_code=status)
        return redirect("/staff/admissions?done=admitted")

    @post("/{application_id:int}/refuse")
    async def refuse(self, request: Request, application_id: FromPath[int], data: Form,
                     staff: NamedDependency[dict]) -> object:
        reason = data.get("reason", "")
        try:
            await service.refuse(request.app.state.settings, application_id, reason, staff, origin_of(request))
        except service.AdmissionError as exc:
            status = 409 if str(exc) == service.ALREADY else 422
            if exc.field == "reason":  # at the field, the card re-rendered with what was typed
                return await self._page(request, errors={application_id: {"reason": str(exc)}},
                                        reasons={application_id: reason}, status_code=status)
            return await self._page(request, error=str(exc), status_code=status)
        return redirect("/staff/admissions?done=refused")
