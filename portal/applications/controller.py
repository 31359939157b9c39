"""Staff: the applications queue, a member's application and documents (PDF downloads)."""

from __future__ import annotations

from litestar import Controller, Request, Response, get
from litestar.params import FromPath

from portal.applications import forms, service
from portal.documents import store
from portal.documents.download import pdf_response
from portal.staff.guards import staff_guard
from portal.web import PageError, render


class StaffApplicationsController(Controller):
    path = "/staff"
    guards = [staff_guard]

    @get("/applications")
    async def index(self, request: Request) -> object:
        status = request.query_params.get("status", "all")
        rows = await service.list_for_staff(status)
        return render(request, "applications/staff_list.html", {"rows": rows, "status": status,
                                                                 "labels": service.STAFF_STATUS_LABELS,
                                                                 "types": forms.APPLICANT_TYPES})

    @get("/applications/{application_id:int}")
    async def detail(self, request: Request, application_id: FromPath[int]) -> object:
        view = await service.view_for_staff(application_id)
        if view is None:
            raise PageError(status_code=404, detail="Такого заявления нет.")
        context = {"application": view.application, "member": view.member, "rows": view.rows,
                   "documents": view.documents, "signatures": view.signatures, "acceptance": view.acceptance,
                   "labels": service.STAFF_STATUS_LABELS, "types": forms.APPLICANT_TYPES}
        return render(request, "applications/staff_detail.html", context)

    @get("/documents/{document_id:int}")
    async def document_pdf(self, request: Request, document_id: FromPath[int]) -> Response:
        doc = await store.pdf_of(document_id)
        if doc is None:
            raise PageError(status_code=404, detail="Такого документа нет.")
        return pdf_response(request, doc)
