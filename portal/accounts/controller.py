from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from portal.accounts import guards, offer, service
from portal.cooperatives.service import operator
from portal.origin import origin_of
from portal.connect import service as connect
from portal.web import PageError, post_rate_limit, redirect, render

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
    """A registration link that does not work, said in plain words, with «Войти» and the operator's contacts."""
    status, title, text = LINK_PROBLEMS[exc.state]
    operator = request.app.state.settings.operator
    return render(request, "accounts/link_problem.html", {"title": title, "text": text, "state": exc.state,
                                                          "operator": operator}, status_code=status)


# The print layout (A4 margins, the addressee block on the right) on a narrow screen: same text, readable.
SCREEN_CSS = (
    "<style>@media screen { body { margin: 12px; } }"
    " @media screen and (max-width: 640px) { .addressee { margin-left: 0 !important; } }</style>"
)


def document_frame(html: str) -> Response:
    """A document's HTML to be read in a frame of a portal page: no scripts, nothing from outside."""
    return Response(html.replace("</head>", SCREEN_CSS + "</head>", 1), media_type="text/html", headers={
        "X-Frame-Options": "SAMEORIGIN",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                   "frame-ancestors 'self'",
    })


def offer_pdf_response(pdf: bytes, version: int) -> Response:
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="oferta-pep-v{version}.pdf"',
        "Cache-Control": "private, no-cache",
    })


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

    def _page(self, request: Request, state: connect.LinkState, token: str, *, errors: dict | None = None,
              email: str = "", accepted: bool = False, status_code: int = 200) -> object:
        template = offer.current_offer()
        return render(request, "accounts/join.html", {
            "link": state.link, "req": state.request, "token": token, "errors": errors or {}, "email": email,
            "offer": template, "offer_accepted": accepted}, status_code=status_code)

    @get("/{token:str}")
    async def start(self, request: Request, token: FromPath[str]) -> object:
        state = await self._link(token)
        return self._page(request, state, token)

    @get("/{token:str}/offer")
    async def offer_text(self, request: Request, token: FromPath[str]) -> Response:
        """The ПЭП offer, readable in full before it is accepted (shown in a frame of the registration page)."""
        await self._link(token)
        return document_frame(offer.offer_html(offer.offer_context(await operator())))

    @get("/{token:str}/offer.pdf")
    async def offer_download(self, request: Request, token: FromPath[str]) -> Response:
        await self._link(token)
        pdf = await offer.offer_pdf(offer.offer_context(await operator()))
        return offer_pdf_response(pdf, offer.current_offer().version)

    @post("/{token:str}")
    async def register(self, request: Request, token: FromPath[str], data: Form) -> object:
        state = await self._link(token)
        accepted = data.get("pep_offer") == "on"
        try:
            member_id = await service.register(token, data.get("email", ""), data.get("public_key", ""),
                                               data.get("key_proof", ""), data.get("saved") == "on", origin_of(request),
                                               offer_accepted=accepted, offer_sha256=data.get("offer_sha256", ""))
        except service.AccountError as exc:
            return self._page(request, state, token, errors={exc.field: exc.message}, email=data.get("email", ""),
                              accepted=accepted and exc.field != "pep_offer", status_code=422)
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
                                         data.get("signature", ""), origin_of(request))
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
        await service.request_recovery(request.app.state.settings, email, origin_of(request))
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
