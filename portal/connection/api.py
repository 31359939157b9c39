"""The operator's API for self-hosted cooperatives (SPEC §9, last paragraph), and the tokens it is opened with.

A cooperative that runs the portal on its own server («на своём сервере») starts the same image with
``PORTAL_OPERATOR_URL`` and a token from the cabinet; the instance asks ``GET /api/v1/connections/{domain}`` what
it needs to install: its requisites, fees, description, the representative's public key and the agreement's hash.

- A token is shown once and stored as its SHA-256 (a leaked database opens nothing), with its first characters
  kept to tell tokens apart in the cabinet; it can be revoked. Only a member whose current agreement is signed
  for self-hosting gets one.
- The API answers JSON only — also its errors (``{"detail": "…"}`` in Russian, 401 with ``WWW-Authenticate``) —
  and is described by an OpenAPI schema at ``/api/v1/openapi.json`` that lists the /api/v1 routes and nothing
  of the pages (the app's own routes stay out of every schema).
- What the API gives is what the agreement says about the cooperative — no passport data, no personal data of
  the representative beyond the name, position and public key the agreement is signed with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shlex
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, Parameter
from litestar.response import Template

from portal.accounts.guards import current_member, member_guard
from portal.accounts.tables import MemberKey
from portal.clock import now
from portal.connection.forms import DomainError, clean_domain, shown_domain
from portal.connection.tables import ApiToken, Connection
from portal.documents.tables import Document
from portal.web import HTML, is_htmx, redirect

log = logging.getLogger("portal.api")

API_PATH = "/api/v1"
TOKEN_PREFIX = "vsk_"  # marks a ВОСХОД API token (secret scanners, people reading a config)
PREFIX_LENGTH = 12  # "vsk_" and 8 characters of the secret: enough to tell tokens apart, nothing to guess with
MAX_ACTIVE_TOKENS = 10
IMAGE = "voskhod-portal"  # the image `docker build -t voskhod-portal .` makes (docs/installation.md)

NO_TOKEN = ("Нужен токен API: передайте его в заголовке «Authorization: Bearer <токен>». Токен выдаётся в кабинете "
            "пайщика, раздел «Подключение».")
BAD_TOKEN = ("Токен API не действует: он неверный или отозван. Выпустите новый в кабинете пайщика, раздел "
             "«Подключение».")
NOT_SELF_HOSTED = ("Токен API выдаётся, когда подписано соглашение о подключении с размещением «на своём сервере»: "
                   "он нужен только серверу кооператива.")
TOO_MANY = (f"Действующих токенов уже {MAX_ACTIVE_TOKENS} — отзовите ненужные, прежде чем выпускать новый.")


# --- tokens ------------------------------------------------------------------------------------------------


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class TokenRefused(Exception):
    """A token cannot be issued; the message is for the member."""


async def current_connection(member_id: int) -> dict | None:
    """The member's agreement in force: the latest one signed (or approved by staff); None before the first.

    Kept here until the connection service has the same function (then this one points at it)."""
    return await Connection.select().where(
        (Connection.member == member_id) & Connection.status.is_in(["signed", "approved"])
    ).order_by(Connection.id, ascending=False).first()


async def issue_token(member_id: int) -> str:
    """A new token for the member's own server: returned once, stored as its SHA-256.

    Refused (TokenRefused) unless the member's current agreement is for a self-hosted site."""
    connection = await current_connection(member_id)
    if connection is None or connection["hosting"] != "self":
        raise TokenRefused(NOT_SELF_HOSTED)
    active = await ApiToken.count().where((ApiToken.member == member_id) & ApiToken.revoked_at.is_null())
    if active >= MAX_ACTIVE_TOKENS:
        raise TokenRefused(TOO_MANY)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await ApiToken.insert(ApiToken(member=member_id, token_sha256=token_hash(raw), prefix=raw[:PREFIX_LENGTH],
                                   created_at=now()))
    return raw


async def revoke_token(member_id: int, token_id: int) -> bool:
    """Revoke one of the member's own tokens; False when there is no such token of theirs or it is revoked."""
    rows = await ApiToken.update({ApiToken.revoked_at: now()}).where(
        (ApiToken.id == token_id) & (ApiToken.member == member_id) & ApiToken.revoked_at.is_null()
    ).returning(ApiToken.id)
    return bool(rows)


async def tokens_of(member_id: int) -> list[dict]:
    """The member's tokens, newest first: id, prefix, created_at, last_used_at, revoked_at — never the hash."""
    return await ApiToken.select(ApiToken.id, ApiToken.prefix, ApiToken.created_at, ApiToken.last_used_at,
                                 ApiToken.revoked_at).where(ApiToken.member == member_id).order_by(
        ApiToken.id, ascending=False)


async def member_for_token(raw: str) -> int | None:
    """The member a token (as presented) belongs to while it is not revoked; marks it used now."""
    raw = (raw or "").strip()
    if not raw or len(raw) > 200:
        return None
    rows = await ApiToken.update({ApiToken.last_used_at: now()}).where(
        (ApiToken.token_sha256 == token_hash(raw)) & ApiToken.revoked_at.is_null()
    ).returning(ApiToken.member)
    return rows[0]["member"] if rows else None


# --- what an instance installs -----------------------------------------------------------------------------


class CooperativeData(msgspec.Struct, kw_only=True):
    """The cooperative as its signed application and the agreement name it."""

    name_full: str
    name_short: str
    inn: str
    ogrn: str
    kpp: str
    legal_address: str
    actual_address: str
    phone: str
    email: str
    bank_name: str
    bik: str
    corr_account: str
    settlement_account: str


class Fees(msgspec.Struct, kw_only=True):
    """The cooperative's own fees, in kopecks (entrance and minimal share; organizations and individuals)."""

    entrance_org: int
    share_org: int
    entrance_ind: int
    share_ind: int


class Representative(msgspec.Struct, kw_only=True):
    """Who signed the agreement for the cooperative: name, position and the key the signature checks against."""

    full_name: str
    position: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    fingerprint: str


class Agreement(msgspec.Struct, kw_only=True):
    """The signed agreement: its document hash (found by the operator's /verify), its PDFs' SHA-256, dates."""

    document_hash: str  # SHA-256 of the canonical document the member signed
    pdf_sha256: str  # the signed PDF
    signed_at: str | None
    approved_pdf_sha256: str | None  # the copy countersigned by the operator's seal (status approved)
    approved_at: str | None


class ConnectionInfo(msgspec.Struct, kw_only=True):
    """What a self-hosted instance needs to install its cooperative."""

    domain: str  # punycode
    domain_unicode: str
    status: str  # signed | approved
    hosting: str  # self
    description: str
    cooperative: CooperativeData
    fees: Fees
    representative: Representative
    agreement: Agreement


class ApiErrorBody(msgspec.Struct):
    detail: str


_ORG_FIELDS = ("inn", "ogrn", "kpp", "legal_address", "actual_address", "phone", "email", "bank_name", "bik",
               "corr_account", "settlement_account")


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


async def _agreement(document_id: int | None) -> tuple[dict, dict]:
    """The agreement's document row (hash, PDF's SHA-256) and the data it was signed with (``{}`` when none)."""
    if not document_id:
        return {}, {}
    row = await Document.select(Document.document_hash, Document.pdf_sha256, Document.canonical_json).where(
        Document.id == document_id).first()
    if row is None:
        return {}, {}
    return row, json.loads(row["canonical_json"]).get("data", {}).get("data", {})


async def connection_info(member_id: int, domain: str) -> ConnectionInfo | None:
    """The member's current self-hosted agreement for ``domain`` (punycode), as the API gives it; else None.

    The cooperative's requisites are the agreement's own (its ``member`` section, as signed), so the instance gets
    exactly what the agreement says and nothing of the application beyond it (no passport data)."""
    connection = await current_connection(member_id)
    if connection is None or connection["hosting"] != "self" or connection["domain"] != domain:
        return None
    document, signed = await _agreement(connection["document"])
    approved, _ = await _agreement(connection["approved_document"])
    party = signed.get("member") or {}
    key = await MemberKey.select(MemberKey.public_key, MemberKey.fingerprint).where(
        (MemberKey.member == member_id) & MemberKey.revoked_at.is_null()).order_by(
        MemberKey.id, ascending=False).first()
    rep_name = " ".join(str(party[k]) for k in ("rep_last_name", "rep_first_name", "rep_patronymic")
                        if party.get(k))
    name_full = str(party.get("org_full_name", ""))
    return ConnectionInfo(
        domain=connection["domain"],
        domain_unicode=shown_domain(connection["domain"]),
        status=connection["status"],
        hosting=connection["hosting"],
        description=connection["description"],
        cooperative=CooperativeData(name_full=name_full, name_short=str(party.get("org_short_name", "") or name_full),
                                    **{k: str(party.get(k, "")) for k in _ORG_FIELDS}),
        fees=Fees(entrance_org=connection["fee_entrance_org"], share_org=connection["fee_share_org"],
                  entrance_ind=connection["fee_entrance_ind"], share_ind=connection["fee_share_ind"]),
        representative=Representative(full_name=rep_name, position=str(party.get("rep_position", "")),
                                      public_key=key["public_key"] if key else "",
                                      fingerprint=key["fingerprint"] if key else ""),
        agreement=Agreement(document_hash=document.get("document_hash", ""),
                            pdf_sha256=document.get("pdf_sha256", ""), signed_at=_iso(connection["signed_at"]),
                            approved_pdf_sha256=approved.get("pdf_sha256"),
                            approved_at=_iso(connection["decided_at"]) if connection["status"] == "approved"
                            else None),
    )


# --- the API ---------------------------------------------------------------------------------------------


class ApiError(HTTPException):
    """An API refusal whose detail is a Russian sentence for the instance's operator."""


_API_TEXTS = {400: "Некорректный запрос.", 401: NO_TOKEN, 404: "Не найдено.", 405: "Метод не поддерживается.",
              429: "Слишком много запросов. Повторите позже."}


def api_error_handler(request: Request, exc: Exception) -> Response:
    """Every error of /api/v1 is JSON ``{"detail": "…"}``: an instance reads it, not a person in a browser."""
    if isinstance(exc, HTTPException):
        status = exc.status_code
        detail = exc.detail if isinstance(exc, ApiError) else _API_TEXTS.get(status, "Ошибка запроса.")
        headers = dict(exc.headers or {})
    else:
        log.exception("API error on %s %s", request.method, request.url.path, exc_info=exc)
        status, detail, headers = 500, "Внутренняя ошибка оператора. Повторите позже.", {}
    return Response({"detail": detail}, status_code=status, headers=headers, media_type="application/json")


async def api_member(request: Request) -> int:
    """The member whose token the request carries (``Authorization: Bearer …``), or a 401."""
    header = request.headers.get("authorization", "")
    scheme, _, raw = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise ApiError(status_code=401, detail=NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    member_id = await member_for_token(raw)
    if member_id is None:
        raise ApiError(status_code=401, detail=BAD_TOKEN,
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return member_id


@get("/connections/{domain:str}", summary="Подключение кооператива по домену",
     description="Что нужно самостоятельно размещённому экземпляру портала для установки: реквизиты и взносы "
                 "кооператива, описание, статус соглашения, открытый ключ представителя и хеш документа "
                 "соглашения. Отвечает только владельцу токена, чьё действующее соглашение (размещение «на своём "
                 "сервере») заключено на этот домен.",
     responses={401: ResponseSpec(ApiErrorBody, description="Нет токена, токен неверный или отозван"),
                404: ResponseSpec(ApiErrorBody, description="У владельца токена нет подключения с этим доменом")},
     dependencies={"api_member_id": Provide(api_member)}, cache_control=None)
async def get_connection(
    api_member_id: NamedDependency[int],
    domain: Annotated[str, Parameter(description="Домен кооператива: в punycode или в Юникоде")],
) -> ConnectionInfo:
    try:
        name = clean_domain(domain)
    except DomainError:
        name = ""
    info = await connection_info(api_member_id, name) if name else None
    if info is None:
        raise ApiError(status_code=404, detail=f"Подключения с доменом «{domain}» у владельца токена нет: проверьте "
                                               "PORTAL_BASE_URL экземпляра и домен в соглашении о подключении.")
    return info


operator_api = Router(
    path=API_PATH,
    route_handlers=[get_connection],
    # No session and no CSRF cookie: an instance is no browser, the token is all it shows.
    opt={"sites": "operator", "skip_session": True, "exclude_from_csrf": True},
    include_in_schema=True,
    security=[{"bearer": []}],
    exception_handlers={HTTPException: api_error_handler, Exception: api_error_handler},
    tags=["Подключения"],
)


def openapi_config() -> OpenAPIConfig:
    """The schema of /api/v1 only, served at /api/v1/openapi.json (the app sets include_in_schema=False for the
    rest, so pages and the staff console are never listed)."""
    return OpenAPIConfig(
        title="API оператора ПК «ВОСХОД»",
        version="1",
        description="API оператора платформы «Кооперативная экономика» для самостоятельно размещённых "
                    "экземпляров портала. Токен выдаётся в кабинете пайщика («Подключение»).",
        path=API_PATH,
        render_plugins=[JsonRenderPlugin()],
        openapi_router=Router(path=API_PATH, route_handlers=[],
                              opt={"sites": "operator", "skip_session": True, "exclude_from_csrf": True},
                              exception_handlers={HTTPException: api_error_handler}),
        components=Components(security_schemes={"bearer": SecurityScheme(
            type="http", scheme="bearer", description="Токен API из кабинета пайщика")}),
    )


# --- the cabinet ---------------------------------------------------------------------------------------------


def docker_command(settings, domain: str, token: str) -> str:
    """The `docker run` a member copies to start their cooperative's instance (the image's data dir is /data)."""
    lines = [
        "docker run -d --name portal --restart unless-stopped",
        "-p 8000:8000",
        "-v portal-data:/data",
        "-e PORTAL_SECRET_KEY='впишите-сюда-случайный-секрет'",
        f"-e PORTAL_BASE_URL={shlex.quote('https://' + domain)}",
        f"-e PORTAL_OPERATOR_URL={shlex.quote(settings.base_url)}",
        f"-e PORTAL_OPERATOR_TOKEN={shlex.quote(token)}",
        IMAGE,
    ]
    return " \\\n  ".join(lines)


async def tokens_context(member_id: int, settings: Any = None, *, new_token: str = "", error: str = "") -> dict:
    """What connection/_tokens.html needs: whether a token may be issued, the tokens, a token just issued."""
    connection = await current_connection(member_id)
    allowed = connection is not None and connection["hosting"] == "self"
    context: dict = {"tokens": await tokens_of(member_id), "tokens_allowed": allowed, "tokens_error": error,
                     "new_token": new_token, "docker_command": "", "tokens_domain": ""}
    if allowed:
        context["tokens_domain"] = shown_domain(connection["domain"])
        if new_token and settings is not None:
            context["docker_command"] = docker_command(settings, connection["domain"], new_token)
    return context


def _tokens_page(request: Request, context: dict, status_code: int = 200) -> Template:
    """htmx swaps the section; a plain form POST gets a page with the section (the token is shown once, so no
    redirect could show it again)."""
    return Template(template_name="connection/_tokens.html", context={**context, "standalone": not is_htmx(request)},
                    status_code=status_code, media_type=HTML)


class CabinetTokensController(Controller):
    path = "/cabinet/connection/tokens"
    guards = [member_guard]
    dependencies = {"member": Provide(current_member)}

    @post("/", status_code=200)
    async def issue(self, request: Request, member: NamedDependency[dict]) -> Template:
        settings = request.app.state.settings
        try:
            token = await issue_token(member["id"])
        except TokenRefused as exc:
            return _tokens_page(request, await tokens_context(member["id"], settings, error=str(exc)), 422)
        return _tokens_page(request, await tokens_context(member["id"], settings, new_token=token))

    @post("/{token_id:int}/revoke", status_code=200)
    async def revoke(self, request: Request, member: NamedDependency[dict], token_id: FromPath[int]) -> object:
        """Revoked at once: the instance's next request with it gets a 401. Without htmx — back to «Подключение»."""
        if not await revoke_token(member["id"], token_id):
            raise NotFoundException()
        if not is_htmx(request):
            return redirect("/cabinet/connection#api-tokens")
        return _tokens_page(request, await tokens_context(member["id"], request.app.state.settings))
