"""Staff: the applications queue, a member's application and documents (PDF downloads)."""

from __future__ import annotations

from litestar import Controller, Request, Response, get
from litestar.params import FromPath

from portal.accounts.tables import Member
from portal.applications import forms, service
from portal.applications.tables import Application
from portal.documents.download import pdf_response
from portal.documents import store
from portal.staff.guards import staff_guard
from portal.web import PageError, render

STATUS_LABELS = {"draft": "Заполняется", "signed": "Подписано"}


class StaffApplicationsController(Controller):
    path = "/staff"
    guards = [staff_guard]

    @get("/applications")
    async def index(self, request: Request) -> object:
        status = request.query_params.get("status", "all")
        q = Application.select(
            Application.id, Application.status, Application.applicant_type, Application.updated_at,
            Application.signed_at, Application.member.email, Application.member.display_name, Application.member.id,
        ).order_by(Application.id, ascending=False)
        if status in STATUS_LABELS:
            q = q.where(Application.status == status)
        rows = await q.limit(500)
        return render(request, "applications/staff_list.html", {"rows": rows, "status": status,
                                                                 "labels": STATUS_LABELS,
                                                                 "types": forms.APPLICANT_TYPES})

    @get("/applications/{application_id:int}")
    async def detail(self, request: Request, application_id: FromPath[int]) -> object:
        application = await Application.select().where(Application.id == application_id).first()
        if application is None:
            raise PageError(status_code=404, detail="Такого заявления нет.")
        member = await Member.select().where(Member.id == application["member"]).first()
        draft = service.draft_of(application)
        fields = forms.fields_for(application["applicant_type"])
        docs = await store.documents_of(member["id"])
        signatures = {d["id"]: await store.signatures_of(d["id"]) for d in docs}
        context = {"application": application, "member": member, "draft": draft, "fields": fields,
                   "documents": docs, "signatures": signatures, "labels": STATUS_LABELS,
                   "types": forms.APPLICANT_TYPES}
        return render(request, "applications/staff_detail.html", context)

    @get("/documents/{document_id:int}")
    async def document_pdf(self, request: Request, document_id: FromPath[int]) -> Response:
        doc = await store.pdf_of(document_id)
        if doc is None:
            raise PageError(status_code=404, detail="Такого документа нет.")
        return pdf_response(request, doc)
