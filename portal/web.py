"""Shared web helpers: page rendering (whole page or an htmx block), errors, headers, guards."""

from __future__ import annotations

import logging
from typing import Any

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger("portal")
HTML = "text/html"  # Litestar adds "; charset=utf-8" itself

# Scripts from the npm registry, served by jsDelivr, pinned with a Subresource Integrity hash (the
# sha384 of that file in `npm pack <package>@<version>`; the browser tests fetch it and check it).
CDN = "https://cdn.jsdelivr.net"
HTMX_VERSION = "2.0.11"
HTMX_URL = f"{CDN}/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
SIGNATURE_PAD_VERSION = "5.1.4"  # the drawing of the hand-written signature (static/signature-pad.js)
SIGNATURE_PAD_URL = f"{CDN}/npm/signature_pad@{SIGNATURE_PAD_VERSION}/dist/signature_pad.umd.min.js"
SIGNATURE_PAD_SRI = "sha384-tDSOCzVljSggNbjPF/Hz+FRfFWI/03Gp04+9fEFbNzsT1CI/tk1WBY2QG4dlmevX"

ERROR_TEXTS: dict[int, tuple[str, str]] = {
    400: ("Некорректный запрос", "Сервер не смог разобрать запрос. Проверьте введённые данные и попробуйте ещё раз."),
    403: ("Доступ запрещён", "У вас нет прав на это действие, или страница устарела. Обновите страницу и повторите."),
    404: ("Страница не найдена", "Такой страницы нет. Возможно, ссылка устарела или в адресе опечатка."),
    405: ("Метод не поддерживается", "Эта страница не принимает такой запрос."),
    410: ("Ссылка больше не действует", "Срок действия ссылки истёк или она уже была использована."),
    413: ("Слишком большой файл", "Размер загружаемых данных превышает допустимый."),
    422: ("Данные не приняты", "Проверьте введённые данные."),
    429: ("Слишком много попыток", "Вы отправили слишком много запросов. Подождите немного и попробуйте снова."),
    500: ("Внутренняя ошибка", "Что-то пошло не так на нашей стороне. Мы уже знаем об ошибке — попробуйте позже."),
}


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
) -> Template:
    """The whole page, or only `block` of the same template on an htmx request."""
    context = context or {}
    if block and is_htmx(request):
        return HTMXBlockTemplate(
            template_name=template, block_name=block, context=context, status_code=status_code, media_type=HTML
        )
    return Template(template_name=template, context=context, status_code=status_code, media_type=HTML)


def redirect(path: str) -> Redirect:
    """POST, then 303 to the next page."""
    return Redirect(path=path, status_code=303)


def _error_template(status_code: int, title: str, text: str) -> Template:
    return Template(
        template_name="errors/error.html",
        context={"status_code": status_code, "title": title, "text": text},
        status_code=status_code,
        media_type=HTML,
    )


class LoginRequired(Exception):
    def __init__(self, login_path: str, next_path: str):
        self.login_path = login_path
        self.next_path = next_path


class PageError(HTTPException):
    """An HTTP error whose detail is a Russian sentence meant for the user."""


def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail if isinstance(exc, PageError) else None
    if request.url.path == "/healthz":
        return Response({"status": "error"}, status_code=exc.status_code)
    return _error_template(exc.status_code, *_texts(exc.status_code, detail))


def _texts(status_code: int, detail: str | None) -> tuple[str, str]:
    title, text = ERROR_TEXTS.get(status_code, ERROR_TEXTS[500 if status_code >= 500 else 400])
    return title, detail or text


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_template(HTTP_500_INTERNAL_SERVER_ERROR, *_texts(500, None))


def login_required_handler(request: Request, exc: LoginRequired) -> Response:
    from urllib.parse import quote

    return Redirect(path=f"{exc.login_path}?next={quote(exc.next_path)}", status_code=303)


def post_rate_limit(name: str, per_minute: int) -> RateLimitConfig:
    """Limit POSTs per client IP on one form (login, connect, recovery); each form counts on its own."""
    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        store=f"rate_limit_{name}",
        check_throttle_handler=lambda request: request.method == "POST",
        set_rate_limit_headers=False,
    )


def security_headers(production: bool):
    """Headers on every answer: CSP (htmx and signature_pad from CDN), no framing, nosniff, referrer policy."""
    # The two scripts by their exact URLs, not the whole CDN: SRI guards the tags we write, this guards the rest.
    cdn = f"{HTMX_URL} {SIGNATURE_PAD_URL}"
    page_csp = (
        "default-src 'self'; "
        f"script-src 'self' {cdn}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; "
        "font-src 'self' data:; "
        "connect-src 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'; "
        "base-uri 'self'; object-src 'none'"
    )
    # MkDocs Material ships small inline scripts: the docs get 'unsafe-inline' scripts, nothing more.
    docs_csp = page_csp.replace(f"script-src 'self' {cdn}", f"script-src 'self' 'unsafe-inline' {cdn}")
    fixed = [
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]
    if production:
        fixed.append((b"strict-transport-security", b"max-age=31536000"))

    async def before_send(message, scope) -> None:
        """A before-send hook: it sees every answer, also 404s and CSRF refusals that no route handled."""
        if message["type"] != "http.response.start":
            return
        csp = docs_csp if scope.get("path", "").startswith("/docs") else page_csp
        headers = list(message.get("headers", []))
        names = {bytes(h[0]).lower() for h in headers}
        headers += [h for h in fixed if h[0] not in names]
        if b"content-security-policy" not in names:
            headers.append((b"content-security-policy", csp.encode()))
        message["headers"] = headers

    return before_send
