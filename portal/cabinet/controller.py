"""The member's cabinet: the journey, the application, signing the joining package, own documents."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from litestar.di import NamedDependency, Provide

from portal.accounts import offer
from portal.accounts import service as accounts
from portal.accounts.guards import current_member, member_guard
from portal.accounts.offer import document_frame
from portal.admissions import service as admissions
from portal.payments.service import open_fees_invoice
from portal.applications import forms, service
from portal.documents import store
from portal.documents.download import pdf_response
from portal.origin import origin_of
from portal.documents.render import render_html
from portal.web import PageError, redirect, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
MAX_SIGNATURE_UPLOAD = 300 * 1024

STEPS = [
    ("registration", "Регистрация"),
    ("application", "Заявление"),
    ("signature", "Подпись"),
    ("fees", "Взносы"),
    ("admission", "Приём"),
    ("connection", "Подключение"),
    ("installation", "Установка"),
]


def current_step(application: dict) -> str:
    if application["status"] == "signed":
        return "fees"
    form = forms.validate(application["applicant_type"], service.draft_of(application))
    return "signature" if form.valid else "application"


async def admission_step(member_id: int, step: str) -> tuple[str, dict | None]:
    """Past the fees: paid — «Приём» (the council decides); admitted — «Подключение»; refused — it stops at
    «Приём». Returns the step and the council's decision (None while there is none)."""
    if step != "fees":
        return step, None
    decision = await admissions.decision_of(member_id)
    if decision is not None:
        return ("connection" if decision["decision"] == admissions.ADMITTED else "admission"), decision
    invoice = await open_fees_invoice(member_id)
    return ("admission" if invoice and invoice["status"] == "paid" else step), None


class CabinetController(Controller):
    path = "/cabinet"
    guards = [member_guard]
    dependencies = {"member": Provide(current_member)}

    @get("/")
    async def index(self, request: Request, member: NamedDependency[dict]) -> object:
        application = await service.get_or_create(member)
        step = current_step(application)
        step, decision = await admission_step(member["id"], step)
        keys = [k for k, _ in STEPS]
        acceptance = await offer.acceptance_of(member["id"])
        represents = member["display_name"] or forms.display_name(application["applicant_type"],
                                                                  service.draft_of(application))
        context = {"member": member, "application": application, "steps": STEPS, "step": step,
                   "represents": represents, "applicant_type_label": forms.APPLICANT_TYPES.get(
                       application["applicant_type"], ""),
                   "step_index": keys.index(step), "documents": await store.documents_of(member["id"]),
                   "acceptance": acceptance, "offer_title": offer.offer_title(acceptance),
                   "key_replaced": request.query_params.get("key") == "replaced", "decision": decision,
                   "admitted": bool(decision and decision["decision"] == admissions.ADMITTED)}
        return render(request, "cabinet/index.html", context)

    # --- the application -------------------------------------------------------------------------------

    async def _form_page(self, request: Request, member: dict, application: dict, form: forms.ApplicationForm,
                         status_code: int = 200, block: str | None = None) -> object:
        fields = forms.fields_for(form.applicant_type)
        context = {"member": member, "application": application, "form": form, "types": forms.APPLICANT_TYPES,
                   "fields": fields, "signed": application["status"] != "draft",
                   "labels": {f.name: f.label for f in fields}}
        return render(request, "cabinet/application.html", context, status_code=status_code, block=block)

    @get("/application")
    async def application(self, request: Request, member: NamedDependency[dict]) -> object:
        """The form with the saved draft; after a refused submit (?check=1) with every error of the draft."""
        application = await service.get_or_create(member)
        draft = service.draft_of(application)
        if request.query_params.get("check") == "1" and application["status"] == "draft":
            form = forms.validate(application["applicant_type"], draft)
            if form.valid:
                return redirect("/cabinet/sign")
            return await self._form_page(request, member, application, form)
        form = forms.ApplicationForm(values=draft, errors={}, clean={}, applicant_type=application["applicant_type"])
        return await self._form_page(request, member, application, form)

    @post("/application")
    async def save_application(self, request: Request, data: Form, member: NamedDependency[dict]) -> object:
        application = await service.get_or_create(member)
        if application["status"] != "draft":
            return redirect("/cabinet")
        applicant_type = forms.applicant_type_or_default(data.get("applicant_type"))
        unticked = {f.name: "" for f in forms.fields_for(applicant_type) if f.input_type == "checkbox"}
        await service.save_draft(application, applicant_type, {**unticked, **data})
        if data.get("action") == "switch":
            return redirect("/cabinet/application")
        application = await service.get_or_create(member)
        form = forms.validate(applicant_type, service.draft_of(application))
        if not form.valid:
            # The draft is saved: the errors are shown by a GET, so a reload does not post the old values again.
            return redirect("/cabinet/application?check=1#errors")
        return redirect("/cabinet/sign")

    @post("/application/type")
    async def switch_type(self, request: Request, data: Form, member: NamedDependency[dict]) -> object:
        """htmx: another applicant type — the fields of that type, with what was typed before."""
        application = await service.get_or_create(member)
        applicant_type = forms.applicant_type_or_default(data.get("applicant_type"))
        await service.save_draft(application, applicant_type, data)
        application = await service.get_or_create(member)
        form = forms.ApplicationForm(values=service.draft_of(application), errors={}, clean={},
                                     applicant_type=applicant_type)
        return await self._form_page(request, member, application, form, block="fields")

    @post("/application/field/{name:str}")
    async def check_field(self, request: Request, name: FromPath[str], data: Form,
                          member: NamedDependency[dict]) -> object:
        """htmx, as the user leaves a field: save the draft and show that field's error (or none)."""
        application = await service.get_or_create(member)
        applicant_type = forms.applicant_type_or_default(data.get("applicant_type"))
        try:
            field = forms.field_for(applicant_type, name)
        except KeyError:
            raise PageError(status_code=404)
        await service.save_draft(application, applicant_type, {name: data.get(name, "")})
        _, error = forms.validate_field(applicant_type, name, data.get(name, ""), data)
        values = {k: str(v) for k, v in data.items()}
        return render(request, "cabinet/_field.html", {"f": field, "values": values,
                                                       "errors": {name: error} if error else {}})

    # --- signing -----------------------------------------------------------------------------------
    # Three acts, each its own: the ПЭП offer accepted (at registration; here only for members registered
    # before it was asked for), the personal-data consent given («Дать согласие»), the package signed
    # («Подписать»). One drawn signature on the page serves both signed acts.

    @get("/sign")
    async def sign_page(self, request: Request, member: NamedDependency[dict]) -> object:
        return await self._sign_page(request, member)

    async def _sign_page(self, request: Request, member: dict, errors: dict[str, str] | None = None,
                         status_code: int = 200, ticked: dict[str, bool] | None = None) -> object:
        application = await service.get_or_create(member)
        if application["status"] != "draft":
            return redirect("/cabinet")
        today = service.today_moscow()
        package = await service.prepare(member, application, today=today)
        if isinstance(package, forms.ApplicationForm):
            return redirect("/cabinet/application")
        consent = await service.current_consent(member["id"], package)
        earlier_consents = [] if consent else await store.documents_of(member["id"], package=service.CONSENT)
        nonce = await service.new_signing_nonce(application, today)
        context = {"member": member, "package": package, "nonce": nonce, "errors": errors or {},
                   "error": (errors or {}).get("package"), "acceptance": package.acceptance,
                   "offer": await offer.shown_offer(member["cooperative"]), "consent": consent,
                   "consent_outdated": bool(earlier_consents), "ticked": ticked or {}}
        return render(request, "cabinet/sign.html", context, status_code=status_code)

    @get("/sign/preview/{template_id:str}")
    async def preview(self, request: Request, template_id: FromPath[str], member: NamedDependency[dict]) -> Response:
        """The document as it will be signed, readable in full (shown in a frame of the signing page)."""
        application = await service.get_or_create(member)
        package = await service.prepare(member, application)
        if isinstance(package, forms.ApplicationForm) or template_id not in service.JOIN_DOCUMENTS:
            raise PageError(status_code=404)
        return document_frame(render_html(template_id, package.context))

    # --- the ПЭП offer ------------------------------------------------------------------------------

    @get("/offer")
    async def offer_text(self, request: Request, member: NamedDependency[dict]) -> Response:
        """The offer as the member accepted it (with the acceptance), or the current one to be accepted."""
        return offer.offer_frame_response(*await offer.member_offer(member))

    @get("/offer.pdf")
    async def offer_download(self, request: Request, member: NamedDependency[dict]) -> Response:
        return await offer.offer_pdf_response(*await offer.member_offer(member))

    @post("/offer")
    async def accept_offer(self, request: Request, data: Form, member: NamedDependency[dict]) -> object:
        """A member registered before the offer was asked for accepts it before signing anything."""
        try:
            await accounts.accept_offer(member, data.get("pep_offer") == "on", data.get("offer_sha256", ""),
                                        data.get("offer_context_sha256", ""), origin_of(request))
        except accounts.AccountError as exc:
            return await self._sign_page(request, member, errors={"pep_offer": exc.message}, status_code=422)
        return redirect("/cabinet/sign#consent")

    # --- the personal-data consent and the package -----------------------------------------------------

    @staticmethod
    async def _image(data: dict[str, Any]) -> bytes:
        upload = data.get("signature_png")
        image = await upload.read() if isinstance(upload, UploadFile) else b""
        return image[: MAX_SIGNATURE_UPLOAD + 1]

    @post("/consent", request_max_body_size=MAX_SIGNATURE_UPLOAD + 64 * 1024)
    async def give_consent(self, request: Request, data: Multipart, member: NamedDependency[dict]) -> object:
        """«Дать согласие»: the personal-data consent, its own ticked box and its own signature."""
        application = await service.get_or_create(member)
        ticked = str(data.get("consent", "")) == "on"
        try:
            await service.sign_consent(request.app.state.settings, member, application,
                                       nonce=str(data.get("nonce", "")), consent=ticked,
                                       image_png=await self._image(data),
                                       hash=str(data.get(f"hash_{service.CONSENT}", "")),
                                       signature=str(data.get(f"sig_{service.CONSENT}", "")),
                                       origin=origin_of(request))
        except service.SigningError as exc:
            where = "consent" if exc.field == "consent" else "consent_form"
            return await self._sign_page(request, member, errors={where: str(exc)}, status_code=422,
                                         ticked={"consent": ticked})
        return redirect("/cabinet/sign#package")

    @post("/sign", request_max_body_size=MAX_SIGNATURE_UPLOAD + 64 * 1024)
    async def sign(self, request: Request, data: Multipart, member: NamedDependency[dict]) -> object:
        """«Подписать»: the application and the user agreement, after the consent."""
        application = await service.get_or_create(member)
        hashes = {t: str(data.get(f"hash_{t}", "")) for t in service.JOIN_PACKAGE}
        signatures = {t: str(data.get(f"sig_{t}", "")) for t in service.JOIN_PACKAGE}
        try:
            await service.sign_package(request.app.state.settings, member, application,
                                       nonce=str(data.get("nonce", "")), image_png=await self._image(data),
                                       hashes=hashes, signatures=signatures, origin=origin_of(request))
        except service.SigningError as exc:
            return await self._sign_page(request, member, errors={"package": str(exc)}, status_code=422)
        return redirect("/cabinet?signed=1")

    # --- documents ------------------------------------------------------------------------------------

    @get("/documents/{document_id:int}")
    async def document_pdf(self, request: Request, document_id: FromPath[int], member: NamedDependency[dict]) -> Response:
        doc = await store.pdf_of(document_id, member_id=member["id"])
        if doc is None:
            raise PageError(status_code=404, detail="Такого документа нет.")
        return pdf_response(request, doc)
