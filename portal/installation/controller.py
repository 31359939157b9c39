"""The installation wizard on the cooperative's own domain (J6): /install and its steps, thin over
installation.service. Exists on cooperatives' sites only; each page is of the request's site's cooperative.

Steps: «Ключ установки» (/install/key) → «Совет» (/install/council) → «Приглашения» (/install/invitations).
The session of the cooperative's site remembers who proved the key (``session["installer"]``); the other steps
are closed to anyone else.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal.installation import service
from portal.installation.hop import InstallHopController  # noqa: F401 — the operator's side, registered with this
from portal.origin import origin_of
from portal.sites import ON_COOPERATIVE_SITES, site_cooperative
from portal.web import PageError, is_htmx, post_rate_limit, redirect, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
KEY_LIMIT = post_rate_limit("install_key", 10)
SESSION_KEY = "installer"
NONCES = "install_nonces"  # the challenges this browser was given (the latest few: two tabs both work)
STEPS = (("key", "Ключ установки", "/install/key"), ("council", "Совет", "/install/council"),
         ("invitations", "Приглашения", "/install/invitations"))
NO_WIZARD = "На этом сайте нет установки: сайт не развёрнут по соглашению о подключении."


async def the_cooperative(request: Request) -> dict:
    """The site's Cooperative row (sites.site_cooperative, with the annotation Litestar's injection needs)."""
    return await site_cooperative(request)


class NeedsKey(Exception):
    """The step is not open to this session: the installation key is not proved here (to /install/key), or the
    installation is over (to /install, which says so; the polling of the statuses ends there too)."""

    def __init__(self, to: str = "/install/key"):
        self.to = to


def needs_key_handler(request: Request, exc: NeedsKey) -> Response:
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": exc.to})
    return redirect(exc.to)


def operator_hop_url(settings, domain: str, nonce: str) -> str:
    """«Подписать ключом из кабинета ВОСХОДа»: the operator's page that signs this domain's challenge."""
    return f"{settings.base_url.rstrip('/')}/cabinet/install-hop/{quote(domain)}/{quote(nonce)}"


class InstallController(Controller):
    path = "/install"
    opt = ON_COOPERATIVE_SITES
    dependencies = {"cooperative": Provide(the_cooperative)}
    exception_handlers = {NeedsKey: needs_key_handler}

    # --- helpers -------------------------------------------------------------------------------------------

    async def _installation(self, cooperative: dict) -> dict:
        installation = await service.installation_of(cooperative)
        if installation is None:
            raise PageError(status_code=404, detail=NO_WIZARD)
        return installation

    async def _wizard(self, request: Request, cooperative: dict) -> dict:
        """The installation, once the key is proved in this session; an installed site has no wizard left."""
        if cooperative["status"] == "active":
            raise NeedsKey("/install")
        installation = await self._installation(cooperative)
        if request.session.get(SESSION_KEY) != installation["id"] or installation["status"] == service.KEY:
            raise NeedsKey()
        return installation

    def _ctx(self, step: str, cooperative: dict, installation: dict, **extra) -> dict:
        return {"steps": STEPS, "step": step, "cooperative": cooperative, "installation": installation,
                "domain_shown": _shown(cooperative["domain"]), **extra}

    # --- the start ----------------------------------------------------------------------------------------------

    @get("/")
    async def start(self, request: Request, cooperative: NamedDependency[dict]) -> object:
        """The wizard's address: the installed page, or the step this session is at."""
        if cooperative["status"] == "active":
            return render(request, "installation/installed.html", {"cooperative": cooperative})
        installation = await self._installation(cooperative)
        if request.session.get(SESSION_KEY) != installation["id"] or installation["status"] == service.KEY:
            return redirect("/install/key")
        return redirect("/install/invitations" if installation["status"] == service.INVITED else "/install/council")

    # --- «Ключ установки» --------------------------------------------------------------------------------------

    async def _key_page(self, request: Request, cooperative: dict, installation: dict, *, error: str | None = None,
                        key_error: str | None = None, hop_signature: str = "", status_code: int = 200) -> object:
        settings = request.app.state.settings
        domain = cooperative["domain"]
        nonces = list(request.session.get(NONCES) or [])
        if hop_signature:
            nonce = ""  # back from the operator's hop: the challenge it signed is found among this browser's
        else:
            nonce = await service.new_key_challenge(domain)
            request.session[NONCES] = [*nonces[-2:], nonce]
        return render(request, "installation/key.html", self._ctx(
            "key", cooperative, installation, nonce=nonce, message=service.install_message(domain, nonce).decode(),
            hop_url=operator_hop_url(settings, domain, nonce), error=error, key_error=key_error,
            hop_signature=hop_signature, proved=request.session.get(SESSION_KEY) == installation["id"]),
            status_code=status_code)

    @get("/key")
    async def key(self, request: Request, cooperative: NamedDependency[dict]) -> object:
        if cooperative["status"] == "active":
            return redirect("/install")
        installation = await self._installation(cooperative)
        signature = request.query_params.get("signature", "")[:200]
        return await self._key_page(request, cooperative, installation, hop_signature=signature)

    @post("/key", middleware=[KEY_LIMIT.middleware])
    async def prove(self, request: Request, cooperative: NamedDependency[dict], data: Form) -> object:
        if cooperative["status"] == "active":
            return redirect("/install")
        installation = await self._installation(cooperative)
        nonce = data.get("nonce", "")
        nonces = list(request.session.get(NONCES) or [])
        if not nonce and data.get("signature"):  # the signature the operator's hop returned
            nonce = await service.signed_nonce(installation, cooperative["domain"], nonces, data.get("signature", ""))
            if not nonce:
                return await self._key_page(request, cooperative, installation, key_error=service.WRONG_KEY,
                                            status_code=422)
        if nonce not in nonces:
            return await self._key_page(request, cooperative, installation, error=service.STALE, status_code=422)
        try:
            installation = await service.prove_key(installation, cooperative["domain"], nonce,
                                                   data.get("signature", ""), data.get("public_key", ""),
                                                   origin_of(request))
        except service.InstallError as exc:
            request.session[NONCES] = [n for n in request.session.get(NONCES) or [] if n != nonce]
            return await self._key_page(request, cooperative, installation,
                                        error=str(exc) if exc.field == "form" else None,
                                        key_error=str(exc) if exc.field == "key" else None, status_code=422)
        request.session.pop(NONCES, None)
        request.session[SESSION_KEY] = installation["id"]
        return redirect("/install/invitations" if installation["status"] == service.INVITED else "/install/council")

    # --- «Совет» ---------------------------------------------------------------------------------------------

    async def _council_page(self, request: Request, cooperative: dict, installation: dict, *,
                            values: dict | None = None, errors: dict | None = None, error: str | None = None,
                            status_code: int = 200) -> object:
        settings = request.app.state.settings
        rows = await service.council_rows(installation["id"])
        return render(request, "installation/council.html", self._ctx(
            "council", cooperative, installation, council=rows, values=values or {"role": _default_role(rows)},
            errors=errors or {}, error=error, labels=service.LABELS, roles=service.ROLES,
            editable=installation["status"] == service.COUNCIL, need=service.min_council(settings),
            problem=service.council_problem(settings, rows), production=settings.production,
            notice=COUNCIL_NOTICES.get(request.query_params.get("done", ""))),
            status_code=status_code, block="council")

    @get("/council")
    async def council(self, request: Request, cooperative: NamedDependency[dict]) -> object:
        installation = await self._wizard(request, cooperative)
        return await self._council_page(request, cooperative, installation)

    @post("/council")
    async def add(self, request: Request, cooperative: NamedDependency[dict], data: Form) -> object:
        """«Добавить члена совета»: 303 back to the list, or 422 with the errors at the fields (htmx: the block)."""
        installation = await self._wizard(request, cooperative)
        try:
            form = await service.add_person(installation, data, origin_of(request))
        except service.InstallError as exc:
            return await self._council_page(request, cooperative, installation, error=str(exc), status_code=409)
        if not form.valid:
            return await self._council_page(request, cooperative, installation, values=form.values,
                                            errors=form.errors, error=form.errors.get("form"), status_code=422)
        if is_htmx(request):
            return await self._council_page(request, cooperative, installation)
        return redirect("/install/council?done=added#council")

    async def _person_page(self, request: Request, cooperative: dict, installation: dict, person: dict, *,
                           values: dict | None = None, errors: dict | None = None, status_code: int = 200) -> object:
        return render(request, "installation/person.html", self._ctx(
            "council", cooperative, installation, person=person, values=values or person, errors=errors or {},
            labels=service.LABELS, roles=service.ROLES), status_code=status_code, block="person")

    async def _person(self, installation: dict, person_id: int) -> dict:
        person = await service.person_of(installation, person_id)
        if person is None:
            raise PageError(status_code=404, detail="Такого члена совета нет — возможно, его уже удалили.")
        return person

    @get("/council/{person_id:int}")
    async def person(self, request: Request, cooperative: NamedDependency[dict], person_id: FromPath[int]) -> object:
        """The form of one person («Изменить»); with htmx it takes the place of their row."""
        installation = await self._wizard(request, cooperative)
        person = await self._person(installation, person_id)
        if installation["status"] != service.COUNCIL:
            return redirect("/install/council")
        return await self._person_page(request, cooperative, installation, person)

    @post("/council/{person_id:int}")
    async def change(self, request: Request, cooperative: NamedDependency[dict], person_id: FromPath[int],
                     data: Form) -> object:
        installation = await self._wizard(request, cooperative)
        person = await self._person(installation, person_id)
        try:
            form = await service.change_person(installation, person_id, data, origin_of(request))
        except service.InstallError as exc:
            return await self._council_page(request, cooperative, installation, error=str(exc), status_code=409)
        if not form.valid:
            return await self._person_page(request, cooperative, installation, person, values=form.values,
                                           errors=form.errors, status_code=422)
        if is_htmx(request):
            return await self._council_page(request, cooperative, installation)
        return redirect("/install/council?done=changed#council")

    @post("/council/{person_id:int}/delete")
    async def remove(self, request: Request, cooperative: NamedDependency[dict], person_id: FromPath[int]) -> object:
        installation = await self._wizard(request, cooperative)
        try:
            await service.remove_person(installation, person_id, origin_of(request))
        except service.InstallError as exc:
            return await self._council_page(request, cooperative, installation, error=str(exc), status_code=409)
        if is_htmx(request):
            return await self._council_page(request, cooperative, installation)
        return redirect("/install/council?done=removed#council")

    # --- «Приглашения» ---------------------------------------------------------------------------------------

    async def _invitations_page(self, request: Request, cooperative: dict, installation: dict, *,
                                error: str | None = None, block: str | None = None, status_code: int = 200) -> object:
        settings = request.app.state.settings
        council = await service.council_of(installation["id"])
        sent = installation["status"] in (service.INVITED, service.ACTIVE)
        return render(request, "installation/invitations.html", self._ctx(
            "invitations", cooperative, installation, council=council, sent=sent, error=error,
            problem=None if sent else service.council_problem(settings, council),
            poll=installation["status"] == service.INVITED and not all(p["done"] for p in council),
            notice=INVITATION_NOTICES.get(request.query_params.get("done", "")), ttl_hours=24),
            block=block, status_code=status_code)

    @get("/invitations")
    async def invitations(self, request: Request, cooperative: NamedDependency[dict]) -> object:
        installation = await self._wizard(request, cooperative)
        return await self._invitations_page(request, cooperative, installation)

    @get("/invitations/status")
    async def progress(self, request: Request, cooperative: NamedDependency[dict]) -> object:
        """Each person's state alone, for htmx polling."""
        installation = await self._wizard(request, cooperative)
        return await self._invitations_page(request, cooperative, installation, block="progress")

    @post("/invitations")
    async def send(self, request: Request, cooperative: NamedDependency[dict]) -> object:
        """«Отправить приглашения»."""
        installation = await self._wizard(request, cooperative)
        try:
            await service.send_invitations(request.app.state.settings, installation, cooperative, origin_of(request))
        except service.InstallError as exc:
            return await self._invitations_page(request, cooperative, installation, error=str(exc), status_code=422)
        return redirect("/install/invitations?done=sent")

    @post("/invitations/{person_id:int}/resend")
    async def resend(self, request: Request, cooperative: NamedDependency[dict], person_id: FromPath[int]) -> object:
        """«Отправить ещё раз»: the old link stops working, a new one goes out."""
        installation = await self._wizard(request, cooperative)
        try:
            await service.resend_invitation(request.app.state.settings, installation, cooperative, person_id,
                                            origin_of(request))
        except service.InstallError as exc:
            if exc.field == "missing":
                raise PageError(status_code=404, detail=str(exc))
            return await self._invitations_page(request, cooperative, installation, error=str(exc),
                                                block="progress", status_code=409)
        if is_htmx(request):
            return await self._invitations_page(request, cooperative, installation, block="progress")
        return redirect("/install/invitations?done=resent")


COUNCIL_NOTICES = {"added": "Член совета добавлен.", "changed": "Изменения сохранены.",
                   "removed": "Член совета удалён из списка."}
INVITATION_NOTICES = {"sent": "Приглашения отправлены. Здесь видно, кто их принял и что подписал.",
                      "resent": "Новая ссылка отправлена; прежняя больше не действует."}


def _default_role(rows: list[dict]) -> str:
    return service.MEMBER if any(r["role"] == service.CHAIRMAN for r in rows) else service.CHAIRMAN


def _shown(domain: str) -> str:
    from portal.connection.forms import shown_domain

    return shown_domain(domain)
