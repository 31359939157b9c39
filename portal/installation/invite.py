"""The council member's pages on the cooperative's site (J7): the invitation (the ПЭП offer of this cooperative,
then the member key made in the browser), then the regulations signed as one package, and their PDFs.

The invitation link is single-use: once the key is made the member is logged in on this site and goes on to
«/install/regulations»; the link then says it was used."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal.accounts import guards as member_guards
from portal.accounts import offer
from portal.accounts.offer import document_frame
from portal.documents.download import pdf_response
from portal.documents.render import render_html
from portal.installation import council
from portal.origin import origin_of
from portal.sites import ON_COOPERATIVE_SITES, site_cooperative, site_of
from portal.web import PageError, is_htmx, redirect, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
MAX_SIGNATURE_UPLOAD = 300 * 1024
SITE = ON_COOPERATIVE_SITES

INVITATION_PROBLEMS = {
    "unknown": (404, "Такого приглашения нет",
                "Ссылка не найдена. Скорее всего, она скопирована из письма не целиком — откройте её прямо из "
                "письма. Приглашение действует только на сайте того кооператива, совет которого вас пригласил."),
    "used": (410, "Приглашение уже использовано",
             "Ссылка-приглашение одноразовая: ключ по ней уже создан. Если это были вы — откройте страницу "
             "подписания положений в том же браузере. Если нет, сразу сообщите представителю кооператива: "
             "ссылкой мог воспользоваться кто-то другой."),
    "expired": (410, "Срок действия приглашения истёк",
                "Приглашение действует 24 часа. Попросите представителя кооператива отправить его ещё раз — "
                "кнопка «Отправить ещё раз» в мастере установки."),
    "voided": (410, "Приглашение заменено новым",
               "Представитель кооператива отправил вам новое приглашение, и эта ссылка больше не действует. "
               "Откройте ссылку из последнего письма."),
}


class InvitationProblem(Exception):
    def __init__(self, state: str):
        self.state = state


def invitation_problem_page(request: Request, exc: InvitationProblem) -> object:
    status, title, text = INVITATION_PROBLEMS[exc.state]
    response = render(request, "installation/invite_problem.html",
                      {"title": title, "text": text, "state": exc.state}, status_code=status)
    if is_htmx(request):
        response.headers["HX-Refresh"] = "true"
    return response


async def _site_cooperative(request: Request) -> dict:
    """The site's Cooperative row (``sites.site_cooperative`` has no annotation Litestar can inject by)."""
    return await site_cooperative(request)


async def _image(data: dict[str, Any]) -> bytes:
    upload = data.get("signature_png")
    image = await upload.read() if isinstance(upload, UploadFile) else b""
    return image[: MAX_SIGNATURE_UPLOAD + 1]


class InviteController(Controller):
    """/install/invite/{token}: the offer and the key."""

    path = "/install/invite"
    exception_handlers = {InvitationProblem: invitation_problem_page}
    dependencies = {"cooperative": Provide(_site_cooperative)}

    async def _state(self, request: Request, token: str) -> council.InvitationState:
        state = await council.check_invitation(token, site_of(request).cooperative_id)
        if state.state != "valid":
            raise InvitationProblem(state.state)
        return state

    async def _page(self, request: Request, state: council.InvitationState, token: str, cooperative: dict, *,
                    errors: dict | None = None, ticked: bool = False, restore_key: bool = False,
                    status_code: int = 200, block: str | None = None) -> object:
        shown = await offer.shown_offer(cooperative["id"])
        acceptance = await council.pending_offer(request.session.get(council.SESSION_OFFER), state)
        person = state.council_member
        return render(request, "installation/invite.html", {
            "token": token, "person": person, "person_name": council.full_name(person),
            "role": council.ROLE_TITLES.get(person["role"], council.ROLE_TITLES["member"]),
            "invitation": state.invitation, "cooperative": cooperative, "offer": shown, "acceptance": acceptance,
            "accepted_at": acceptance and acceptance["accepted_at"], "offer_accepted": acceptance is not None,
            "offer_ticked": ticked, "restore_key": restore_key, "errors": errors or {}},
            status_code=status_code, block=block)

    @get("/{token:str}", opt=SITE)
    async def start(self, request: Request, token: FromPath[str], cooperative: NamedDependency[dict]) -> object:
        return await self._page(request, await self._state(request, token), token, cooperative)

    @get("/{token:str}/offer", opt=SITE)
    async def offer_text(self, request: Request, token: FromPath[str], cooperative: NamedDependency[dict]) -> Response:
        """This cooperative's ПЭП offer, readable in full before it is accepted (in a frame of the page)."""
        await self._state(request, token)
        return offer.offer_frame_response((await offer.shown_offer(cooperative["id"])).context)

    @get("/{token:str}/offer.pdf", opt=SITE)
    async def offer_download(self, request: Request, token: FromPath[str],
                             cooperative: NamedDependency[dict]) -> Response:
        await self._state(request, token)
        return await offer.offer_pdf_response((await offer.shown_offer(cooperative["id"])).context)

    @post("/{token:str}/offer", opt=SITE)
    async def accept_offer(self, request: Request, token: FromPath[str], data: Form,
                           cooperative: NamedDependency[dict]) -> object:
        """«Принять оферту»: recorded now (the audit log, and the session until the key is made)."""
        state = await self._state(request, token)
        ticked = data.get("pep_offer") == "on"
        try:
            accepted = await council.accept_offer(state, ticked, data.get("offer_sha256", ""),
                                                  data.get("offer_context_sha256", ""), origin_of(request))
        except council.CouncilError as exc:
            return await self._page(request, state, token, cooperative, errors={exc.field: exc.message},
                                    ticked=ticked, status_code=422, block="offer_key")
        request.session[council.SESSION_OFFER] = accepted
        if is_htmx(request):
            return await self._page(request, state, token, cooperative, block="offer_key")
        return redirect(f"/install/invite/{token}#key")

    @post("/{token:str}", opt=SITE)
    async def register(self, request: Request, token: FromPath[str], data: Form,
                       cooperative: NamedDependency[dict]) -> object:
        """The key made in the browser: only its public key and the proof of holding it arrive here."""
        state = await self._state(request, token)
        try:
            member_id = await council.register(token, cooperative["id"], request.session.get(council.SESSION_OFFER),
                                               data.get("public_key", ""), data.get("key_proof", ""),
                                               data.get("saved") == "on", origin_of(request))
        except council.CouncilError as exc:
            if exc.field == "link":
                fresh = await council.check_invitation(token, cooperative["id"])
                raise InvitationProblem(fresh.state if fresh.state != "valid" else "used")
            return await self._page(request, state, token, cooperative, errors={exc.field: exc.message},
                                    restore_key=exc.field != "pep_offer", status_code=422)
        from portal.accounts.service import active_keys, member_by_id

        member = await member_by_id(member_id)
        keys = await active_keys(member_id)
        member_guards.log_in(request, member, keys[-1]["id"])  # a new session: the pending offer goes with the old one
        return redirect("/install/regulations")


class RegulationsController(Controller):
    """/install/regulations: the council member signs the four regulations; their PDFs."""

    path = "/install/regulations"
    guards = [member_guards.member_guard]
    dependencies = {"member": Provide(member_guards.current_member), "cooperative": Provide(_site_cooperative)}

    async def _seat(self, member: dict) -> tuple[dict, dict]:
        seat = await council.seat_of(member)
        if seat is None:
            raise PageError(status_code=403, detail="Положения кооператива подписывают только члены его совета.")
        return seat

    async def _page(self, request: Request, member: dict, cooperative: dict, *, error: str | None = None,
                    status_code: int = 200) -> object:
        person, installation = await self._seat(member)
        package = await council.regulations(installation, cooperative)
        done = await council.progress(installation, cooperative)
        mine = done.signed.get(person["id"], 0) == done.total
        rows = [{"name": council.full_name(p), "role": council.ROLE_TITLES.get(p["role"], "Член совета"),
                 "signed": done.signed.get(p["id"], 0), "me": p["id"] == person["id"]} for p in done.council]
        return render(request, "installation/invite_sign.html", {
            "member": member, "person": person, "person_name": council.full_name(person), "cooperative": cooperative,
            "installation": installation, "package": package, "rows": rows, "total": done.total,
            "signed_by_me": mine, "active": installation["status"] == "active",
            "documents": [done.documents[d.template_id] for d in package if d.template_id in done.documents],
            "error": error}, status_code=status_code)

    @get("/", opt=SITE)
    async def page(self, request: Request, member: NamedDependency[dict], cooperative: NamedDependency[dict]) -> object:
        return await self._page(request, member, cooperative)

    @get("/preview/{template_id:str}", opt=SITE)
    async def preview(self, request: Request, template_id: FromPath[str], member: NamedDependency[dict],
                      cooperative: NamedDependency[dict]) -> Response:
        """A regulation as it is signed, readable in full (in a frame of the page)."""
        _person, installation = await self._seat(member)
        doc = next((d for d in await council.regulations(installation, cooperative) if d.template_id == template_id),
                   None)
        if doc is None:
            raise PageError(status_code=404)
        return document_frame(render_html(template_id, {**doc.document["data"], "signer": doc.document["signer"]}))

    @post("/", opt=SITE, request_max_body_size=MAX_SIGNATURE_UPLOAD + 64 * 1024)
    async def sign(self, request: Request, data: Multipart, member: NamedDependency[dict],
                   cooperative: NamedDependency[dict]) -> object:
        """«Подписать»: every regulation with the member key and the drawn signature, as one package."""
        hashes = {t: str(data.get(f"hash_{t}", "")) for t in council.REGULATIONS}
        signatures = {t: str(data.get(f"sig_{t}", "")) for t in council.REGULATIONS}
        try:
            await council.sign(request.app.state.settings, member, cooperative, image_png=await _image(data),
                               hashes=hashes, signatures=signatures, origin=origin_of(request))
        except council.CouncilError as exc:
            return await self._page(request, member, cooperative, error=exc.message, status_code=422)
        return redirect("/install/regulations?signed=1")

    @get("/documents/{document_id:int}", opt=SITE)
    async def document_pdf(self, request: Request, document_id: FromPath[int],
                           member: NamedDependency[dict]) -> Response:
        doc = await council.document_for(member, document_id)
        if doc is None:
            raise PageError(status_code=404, detail="Такого документа нет.")
        return pdf_response(request, doc)
