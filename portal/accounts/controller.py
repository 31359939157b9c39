from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal.accounts import guards, offer, service
from portal.origin import origin_of
from portal.connect import service as connect
from portal.sites import site_of
from portal.web import PageError, is_htmx, post_rate_limit, redirect, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
LOGIN_LIMIT = post_rate_limit("member_login", 10)
RECOVER_LIMIT = post_rate_limit("recover", 5)

LINK_PROBLEMS = {
    "unknown": (404, "Такой ссылки на регистрацию нет",
                "Ссылка не найдена. Скорее всего, она скопирована из письма не целиком — откройте её прямо из письма."),
    "used": (410, "По этой ссылке уже зарегистрировались",
             "Ссылка на регистрацию одноразовая, и регистрация по ней уже прошла. Если это были вы — войдите "
             "с ключом пайщика. Если вы регистрацию не начинали, сразу напишите нам: ссылкой мог "
             "воспользоваться кто-то другой."),
    "expired": (410, "Срок действия ссылки истёк",
                "Ссылка на регистрацию действует 7 дней. Напишите нам — сотрудник пришлёт новую."),
}


class LinkProblem(Exception):
    def __init__(self, state: str):
        self.state = state


def link_problem_page(request: Request, exc: LinkProblem) -> object:
    """A registration link that does not work, said in plain words, with «Войти» and the operator's contacts.
    An htmx request (the offer accepted on a page opened while the link still worked) reloads the page, which
    then says it."""
    status, title, text = LINK_PROBLEMS[exc.state]
    operator = request.app.state.settings.operator
    response = render(request, "accounts/link_problem.html", {"title": title, "text": text, "state": exc.state,
                                                              "operator": operator}, status_code=status)
    if is_htmx(request):
        response.headers["HX-Refresh"] = "true"
    return response


async def _log_in(request: Request, member_id: int) -> None:
    member = await service.member_by_id(member_id)
    keys = await service.active_keys(member_id)
    guards.log_in(request, member, keys[-1]["id"] if keys else None)


class JoinController(Controller):
    path = "/join"
    exception_handlers = {LinkProblem: link_problem_page}

    async def _link(self, token: str) -> connect.LinkState:
        state = await connect.check_link(token)
        if state.state in LINK_PROBLEMS:
            raise LinkProblem(state.state)
        return state

    async def _page(self, request: Request, state: connect.LinkState, token: str, *, errors: dict | None = None,
                    email: str = "", ticked: bool = False, restore_key: bool = False, status_code: int = 200,
                    block: str | None = None) -> object:
        """The registration page, or only its offer-and-key block (htmx). The key can be made only once the
        offer is accepted — the server says so, the browser does not decide it."""
        shown = await offer.shown_offer()
        acceptance = await offer.pending_of(state.link["id"], shown)
        return render(request, "accounts/join.html", {
            "link": state.link, "req": state.request, "token": token, "errors": errors or {}, "email": email,
            "offer": shown, "acceptance": acceptance, "offer_accepted": acceptance is not None,
            "offer_ticked": ticked, "restore_key": restore_key}, status_code=status_code, block=block)

    @get("/{token:str}")
    async def start(self, request: Request, token: FromPath[str]) -> object:
        state = await self._link(token)
        return await self._page(request, state, token)

    @get("/{token:str}/offer")
    async def offer_text(self, request: Request, token: FromPath[str]) -> Response:
        """The ПЭП offer, readable in full before it is accepted (shown in a frame of the registration page)."""
        await self._link(token)
        return offer.offer_frame_response((await offer.shown_offer()).context)

    @get("/{token:str}/offer.pdf")
    async def offer_download(self, request: Request, token: FromPath[str]) -> Response:
        await self._link(token)
        return await offer.offer_pdf_response((await offer.shown_offer()).context)

    @post("/{token:str}/offer")
    async def accept_offer(self, request: Request, token: FromPath[str], data: Form) -> object:
        """«Принять оферту»: the acceptance is recorded now, before the key; then the key can be made."""
        state = await self._link(token)
        ticked = data.get("pep_offer") == "on"
        try:
            await service.accept_offer_at_registration(token, ticked, data.get("offer_sha256", ""),
                                                       data.get("offer_context_sha256", ""), origin_of(request))
        except service.AccountError as exc:
            if exc.field == "link":
                raise LinkProblem((await connect.check_link(token)).state)
            return await self._page(request, state, token, errors={exc.field: exc.message}, ticked=ticked,
                                    status_code=422, block="offer_key")
        if is_htmx(request):
            return await self._page(request, state, token, block="offer_key")
        return redirect(f"/join/{token}#key")

    @post("/{token:str}")
    async def register(self, request: Request, token: FromPath[str], data: Form) -> object:
        state = await self._link(token)
        try:
            member_id = await service.register(token, data.get("email", ""), data.get("public_key", ""),
                                               data.get("key_proof", ""), data.get("saved") == "on",
                                               origin_of(request))
        except service.AccountError as exc:
            # The key made in the browser is kept, unless the offer was not (or no longer) accepted: a key is
            # made after the acceptance, never before.
            return await self._page(request, state, token, errors={exc.field: exc.message},
                                    email=data.get("email", ""), restore_key=exc.field != "pep_offer",
                                    status_code=422)
        await _log_in(request, member_id)
        return redirect("/cabinet/application")


class LoginController(Controller):
    path = "/"

    @get("/login")
    async def login_page(self, request: Request) -> object:
        return await self._page(request)

    async def _page(self, request: Request, *, email: str = "", errors: dict | None = None, status_code: int = 200):
        nonce = await service.new_challenge()
        next_path = request.query_params.get("next", "")
        return render(request, "accounts/login.html", {"nonce": nonce, "email": email, "errors": errors or {},
                                                       "next_path": next_path}, status_code=status_code)

    @post("/login", middleware=[LOGIN_LIMIT.middleware])
    async def login(self, request: Request, data: Form) -> object:
        try:
            member = await service.login(data.get("email", ""), data.get("nonce", ""), data.get("public_key", ""),
                                         data.get("signature", ""), origin_of(request),
                                         cooperative_id=site_of(request).cooperative_id)
        except service.AccountError as exc:
            return await self._page(request, email=data.get("email", ""), errors={exc.field: exc.message},
                                    status_code=422)
        await _log_in(request, member["id"])
        next_path = data.get("next", "")
        return redirect(next_path if next_path.startswith("/cabinet") else "/cabinet")

    @post("/logout")
    async def logout(self, request: Request) -> object:
        request.clear_session()
        return redirect("/login")

    @post("/logout/all", guards=[guards.member_guard])
    async def logout_everywhere(self, request: Request) -> object:
        """«Выйти на всех устройствах»: this session and every other one of the member end now. Only a session
        still valid (its key, its epoch) may do it: an ended one cannot keep logging the member out."""
        member = await guards.current_member(request)
        await guards.end_all_sessions(member["id"])
        request.clear_session()
        return redirect("/login?ended=all")

    @get("/recover")
    async def recover_page(self, request: Request) -> object:
        return render(request, "accounts/recover.html", {"sent": False, "email": "", "error": None})

    @post("/recover", middleware=[RECOVER_LIMIT.middleware])
    async def recover(self, request: Request, data: Form) -> object:
        from portal.requisites import FieldError, clean_email

        try:
            email = clean_email(data.get("email", ""))
        except FieldError as exc:
            return render(request, "accounts/recover.html", {"sent": False, "email": data.get("email", ""),
                                                             "error": str(exc)}, status_code=422)
        await service.request_recovery(request.app.state.settings, email, origin_of(request),
                                       cooperative_id=site_of(request).cooperative_id)
        return render(request, "accounts/recover.html", {"sent": True, "email": email, "error": None})

    @get("/recover/{token:str}")
    async def recover_key_page(self, request: Request, token: FromPath[str]) -> object:
        return await self._recover_key(request, token, {})

    async def _recover_key(self, request: Request, token: str, errors: dict, status_code: int = 200):
        state, link = await service.check_recovery(token)
        if state != "valid":
            raise PageError(status_code=404 if state == "unknown" else 410,
                            detail="Ссылка для восстановления ключа не действует: она одноразовая и действует "
                                   "24 часа. Запросите новую на странице восстановления.")
        member = await service.member_by_id(link["member"])
        return render(request, "accounts/recover_key.html", {"member": member, "token": token, "errors": errors},
                      status_code=status_code)

    @post("/recover/{token:str}")
    async def replace_key(self, request: Request, token: FromPath[str], data: Form) -> object:
        try:
            member_id = await service.replace_key(token, data.get("public_key", ""), data.get("key_proof", ""),
                                                  data.get("saved") == "on", origin_of(request))
        except service.AccountError as exc:
            return await self._recover_key(request, token, {exc.field: exc.message}, status_code=422)
        await _log_in(request, member_id)
        return redirect("/cabinet?key=replaced")
