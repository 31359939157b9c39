"""«Подключение» in the cabinet (J4, J5) and the staff's «Подключения»: thin handlers over connection.service."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal.accounts.guards import current_member, member_guard
from portal.accounts.offer import document_frame
from portal.admissions import service as admissions
from portal.connection import forms, service
from portal.connection.background import check_dns, start_if_ready
from portal.documents.render import render_html
from portal.documents.templates import rub
from portal.origin import origin_of
from portal.staff.guards import current_staff, staff_guard
from portal.web import PageError, is_htmx, redirect, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def status_context(settings, connection: dict | None) -> dict:
    """The domain and provisioning part of the page (polled by htmx), for the cabinet and the staff console."""
    from portal.connection import dns, provision

    if connection is None:
        return {"connection": None}
    job = await provision.job_of(connection["id"])
    settled = job is not None and job["status"] in ("done", "failed")
    return {
        "connection": connection,
        "domain_shown": forms.shown_domain(connection["domain"]),
        "dns_label": dns.status_label(connection["dns_status"], connection["dns_addresses"]),
        "server_ip": settings.server_ip, "server_ipv6": settings.server_ipv6,
        "job": job, **provision.job_view(job),
        # Poll while something can still change by itself: the DNS before delegation, provisioning until it ends.
        "poll": connection["hosting"] == "hosted" and connection["status"] in (service.SIGNED, service.APPROVED)
        and not settled,
        "site_url": _site_url(settings, connection["domain"]),
    }


def _site_url(settings, domain: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(settings.base_url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{forms.shown_domain(domain)}{port}/"


class CabinetConnectionController(Controller):
    path = "/cabinet/connection"
    guards = [member_guard]
    dependencies = {"member": Provide(current_member)}

    async def _page(self, request: Request, member: dict, *, values: dict[str, str] | None = None,
                    errors: dict[str, str] | None = None, error: str | None = None, block: str | None = None,
                    status_code: int = 200, summary: bool = False) -> object:
        settings = request.app.state.settings
        reason = await service.can_connect(member)
        if reason:
            raise PageError(status_code=403, detail=reason)
        current = await service.current(member["id"])
        draft = await service.draft_of(member)
        typed = values if values is not None else service.typed(draft)
        form = await service.check(settings, member, typed) if any(typed.values()) else None
        prepared = nonce = None
        if form is not None and form.valid and values is None:
            today = service.today_moscow()
            prepared = await service.prepare(settings, member, draft, form, today)
            nonce = await service.new_nonce(draft, today)
        image = await service.drawn_signature(member["id"])
        context = {
            "member": member, "decision": await admissions.decision_of(member["id"]), "current": current,
            "current_label": service.STATUS_LABELS.get(current["status"], "") if current else "",
            "values": typed, "errors": errors if errors is not None else (form.errors if form else {}),
            "error": error, "labels": forms.LABELS, "fees": forms.FEES, "hosting_options": forms.HOSTING,
            "prepared": prepared, "nonce": nonce, "image_sha256": image["sha256"] if image else "",
            "draft": draft, "rub": rub, "shown_domain": forms.shown_domain,
            "changed": bool(current and prepared and _differs(current, prepared)),
            "summary": summary, "oob": block in ("live", "status"),
            **await status_context(settings, current),
        }
        if current is not None and current["hosting"] == "self" and current["status"] != service.RETURNED:
            from portal.connection import api

            context.update(await api.tokens_context(member["id"]))
        return render(request, "connection/cabinet.html", context, block=block, status_code=status_code)

    @get("/")
    async def index(self, request: Request, member: NamedDependency[dict]) -> object:
        return await self._page(request, member)

    @post("/")
    async def save(self, request: Request, member: NamedDependency[dict], data: Form) -> object:
        """The form, saved as typed; with htmx the live preview (and the errors at the fields) answers, without
        JavaScript the page again — 422 with the errors or 303 to the agreement to sign."""
        settings = request.app.state.settings
        if await service.can_connect(member):
            raise PageError(status_code=403, detail=await service.can_connect(member))
        _row, form = await service.save_draft(settings, member, {k: data.get(k, "") for k in forms.FIELDS})
        if is_htmx(request):
            return await self._page(request, member, block="live", status_code=200 if form.valid else 422)
        if not form.valid:
            return await self._page(request, member, values=form.values, errors=form.errors, status_code=422,
                                    summary=True)
        return redirect("/cabinet/connection#agreement")

    @get("/preview")
    async def preview(self, request: Request, member: NamedDependency[dict]) -> Response:
        """The agreement as it will be signed, with the draft's values (shown in a frame of the page)."""
        settings = request.app.state.settings
        if await service.can_connect(member):
            raise PageError(status_code=403, detail="«Подключение» недоступно.")
        draft = await service.draft_of(member)
        form = await service.check(settings, member, service.typed(draft))
        if not form.valid:
            raise PageError(status_code=404, detail="Соглашение появится, когда все поля формы заполнены верно.")
        prepared = await service.prepare(settings, member, draft, form, service.today_moscow())
        return document_frame(render_html(service.TEMPLATE_ID, prepared.context))

    @post("/sign")
    async def sign(self, request: Request, member: NamedDependency[dict], data: Form) -> object:
        try:
            await service.sign(request.app.state.settings, member, nonce=data.get("nonce", ""),
                               hash=data.get("hash", ""), signature=data.get("signature", ""),
                               origin=origin_of(request))
        except service.AgreementError as exc:
            errors = {exc.field: str(exc)} if exc.field not in ("form", "key") else {}
            return await self._page(request, member, errors=errors or None,
                                    error=str(exc) if not errors else None, status_code=422)
        return redirect("/cabinet/connection?signed=1#status")

    @get("/status")
    async def status(self, request: Request, member: NamedDependency[dict]) -> object:
        """The domain and provisioning block alone, for htmx polling."""
        current = await service.current(member["id"])
        if current is None or current["status"] == service.RETURNED:
            raise PageError(status_code=404, detail="Нет соглашения, которое ждёт домена.")
        return await self._page(request, member, block="status")

    @post("/dns-check")
    async def dns_check(self, request: Request, member: NamedDependency[dict]) -> object:
        """«Проверить сейчас»."""
        current = await service.current(member["id"])
        if current is None or current["hosting"] != "hosted":
            raise PageError(status_code=404, detail="Проверять нечего: нет соглашения с размещением у ВОСХОДа.")
        await check_dns(request.app.state.settings, current["id"])
        if is_htmx(request):
            return await self._page(request, member, block="status")
        return redirect("/cabinet/connection#status")


def _differs(current: dict, prepared: service.Prepared) -> bool:
    data = prepared.document["data"]["data"]
    fees = data["fees"]
    return (current["domain"], current["hosting"], current["description"], current["fee_entrance_org"],
            current["fee_share_org"], current["fee_entrance_ind"], current["fee_share_ind"]) != (
        data["domain_ascii"], data["hosting"], data["description"], fees["entrance_org"], fees["share_org"],
        fees["entrance_ind"], fees["share_ind"])


STAFF_NOTICES = {"approved": "Подключение одобрено: соглашение скреплено печатью оператора, пайщику отправлено письмо.",
                 "returned": "Соглашение возвращено на доработку, пайщику отправлено письмо с причиной.",
                 "checked": "DNS проверен."}


class StaffConnectionsController(Controller):
    path = "/staff/connections"
    guards = [staff_guard]
    dependencies = {"staff": Provide(current_staff, sync_to_thread=False)}

    @get("/")
    async def index(self, request: Request) -> object:
        status = request.query_params.get("status")
        rows = await service.for_staff(status)
        from portal.connection import dns

        for row in rows:
            row["domain_shown"] = forms.shown_domain(row["domain"])
            row["dns_label"] = dns.status_label(row["dns_status"], row["dns_addresses"])
            row["status_label"] = service.STATUS_LABELS.get(row["status"], row["status"])
        return render(request, "connection/staff_list.html", {
            "rows": rows, "status": status, "labels": service.STATUS_LABELS,
            "notice": STAFF_NOTICES.get(request.query_params.get("done", ""))})

    async def _detail(self, request: Request, connection_id: int, *, errors: dict | None = None,
                      reason: str = "", error: str | None = None, block: str | None = None,
                      status_code: int = 200) -> object:
        from portal.accounts.tables import Member
        from portal.documents.store import signatures_by_document
        from portal.documents.tables import Document

        connection = await service.get(connection_id)
        if connection is None or connection["status"] == service.DRAFT:
            raise PageError(status_code=404, detail="Такого соглашения нет.")
        member = await Member.select().where(Member.id == connection["member"]).first()
        doc_ids = [d for d in (connection["document"], connection["approved_document"]) if d]
        documents = await Document.select(Document.id, Document.title, Document.document_hash, Document.created_at
                                          ).where(Document.id.is_in(doc_ids)).order_by(Document.id) if doc_ids else []
        context = {
            "c": connection, "member": member, "documents": documents,
            "signatures": await signatures_by_document([d["id"] for d in documents]),
            "status_label": service.STATUS_LABELS.get(connection["status"], ""), "fees": forms.FEES,
            "hosting_options": forms.HOSTING, "rub": rub, "errors": errors or {}, "reason": reason, "error": error,
            "notice": STAFF_NOTICES.get(request.query_params.get("done", "")),
            **await status_context(request.app.state.settings, connection),
        }
        return render(request, "connection/staff_detail.html", context, block=block, status_code=status_code)

    @get("/{connection_id:int}")
    async def detail(self, request: Request, connection_id: FromPath[int]) -> object:
        return await self._detail(request, connection_id)

    @get("/{connection_id:int}/status")
    async def status(self, request: Request, connection_id: FromPath[int]) -> object:
        return await self._detail(request, connection_id, block="status")

    @post("/{connection_id:int}/dns-check")
    async def dns_check(self, request: Request, connection_id: FromPath[int]) -> object:
        connection = await service.get(connection_id)
        if connection is None or connection["hosting"] != "hosted" or connection["status"] == service.DRAFT:
            raise PageError(status_code=404, detail="Проверять нечего.")
        await check_dns(request.app.state.settings, connection_id)
        if is_htmx(request):
            return await self._detail(request, connection_id, block="status")
        return redirect(f"/staff/connections/{connection_id}?done=checked")

    @post("/{connection_id:int}/approve")
    async def approve(self, request: Request, connection_id: FromPath[int], staff: NamedDependency[dict]) -> object:
        settings = request.app.state.settings
        try:
            connection = await service.approve(settings, connection_id, staff, origin_of(request))
        except service.AgreementError as exc:
            return await self._detail(request, connection_id, error=str(exc), status_code=409)
        await start_if_ready(settings, connection)
        return redirect(f"/staff/connections/{connection_id}?done=approved")

    @post("/{connection_id:int}/return")
    async def return_(self, request: Request, connection_id: FromPath[int], data: Form,
                      staff: NamedDependency[dict]) -> object:
        reason = data.get("reason", "")
        try:
            await service.return_for_rework(request.app.state.settings, connection_id, reason, staff,
                                            origin_of(request))
        except service.AgreementError as exc:
            if exc.field == "reason":
                return await self._detail(request, connection_id, errors={"reason": str(exc)}, reason=reason,
                                          status_code=422)
            return await self._detail(request, connection_id, error=str(exc), status_code=409)
        return redirect(f"/staff/connections/{connection_id}?done=returned")
