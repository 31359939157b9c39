"""A self-hosted instance takes its cooperative from the operator (SPEC §9, last paragraph).

Started with ``PORTAL_OPERATOR_URL`` and ``PORTAL_OPERATOR_TOKEN``, the portal is one cooperative's: at start it asks
the operator's API for the connection of its own host (the host of ``PORTAL_BASE_URL``) and writes the cooperative's
row — requisites, fees, description — which portal/sites.py then serves on that host and on loopback.

It refuses to start when the operator cannot give the connection (unreachable, the token refused, no such
connection): an instance without its cooperative could only show «Сайт не найден», and a start that fails with a
clear message is seen at once by whoever started it, like a missing secret key in production. The operator's answer
is taken again at every start, so a changed agreement reaches the instance by a restart.
"""

from __future__ import annotations

import ipaddress
import logging

import httpx
import idna

from portal import db
from portal.clock import now
from portal.cooperatives.tables import Cooperative
from portal.sites import LOOPBACK

log = logging.getLogger("portal.instance")
TIMEOUT = httpx.Timeout(15.0, connect=10.0)


class OperatorSyncError(Exception):
    """The connection could not be taken from the operator; the message (Russian) says why and what to do.

    ``refused``: the operator answered no (token refused, no such connection) — unlike a network failure or an
    operator's own error, which may pass by itself."""

    def __init__(self, message: str, *, refused: bool = False):
        super().__init__(message)
        self.refused = refused


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ascii_host(host: str) -> str:
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise OperatorSyncError(f"PORTAL_BASE_URL: в адресе «{host}» недопустимое имя домена.") from None


async def fetch_connection(settings) -> dict:
    """The operator's answer for this instance's host (JSON of GET /api/v1/connections/{host}); OperatorSyncError
    with the reason otherwise."""
    if not settings.operator_token:
        raise OperatorSyncError("PORTAL_OPERATOR_TOKEN не задан: без токена API оператор не отдаст данные "
                                "кооператива. Выпустите токен в кабинете пайщика на портале оператора (раздел "
                                "«Подключение») и задайте его в PORTAL_OPERATOR_TOKEN.")
    host = _ascii_host(settings.operator_host)
    if not host or host in LOOPBACK or _is_address(host):
        raise OperatorSyncError(f"PORTAL_BASE_URL ({settings.base_url}): укажите адрес сайта кооператива с его "
                                "доменом, например https://coop.example.ru, — по домену оператор находит "
                                "подключение.", refused=True)
    url = f"{settings.operator_url}/api/v1/connections/{host}"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            response = await client.get(url, headers={"Authorization": f"Bearer {settings.operator_token}",
                                                      "Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OperatorSyncError(f"Оператор недоступен ({settings.operator_url}): {exc.__class__.__name__} {exc}. "
                                "Проверьте PORTAL_OPERATOR_URL и связь с ним.") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if response.status_code == 401:
        raise OperatorSyncError(f"Оператор не принял токен API (PORTAL_OPERATOR_TOKEN): {detail or 'отказано'}",
                                refused=True)
    if response.status_code == 404:
        raise OperatorSyncError(f"Оператор не знает подключения с доменом {host} для этого токена: "
                                f"{detail or 'не найдено'}", refused=True)
    if 400 <= response.status_code < 500:
        raise OperatorSyncError(f"Оператор отказал ({response.status_code}) на {url}"
                                f"{': ' + detail if detail else ''}.", refused=True)
    if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("cooperative"), dict):
        raise OperatorSyncError(f"Оператор ответил {response.status_code} на {url}"
                                f"{': ' + detail if detail else ''} — повторите позже.")
    if body.get("domain") != host:
        raise OperatorSyncError(f"Оператор вернул подключение другого домена ({body.get('domain')!r}, а нужен {host}).",
                                refused=True)
    return body


def cooperative_values(info: dict, settings) -> dict:
    """The Cooperative row's columns from the operator's answer."""
    coop = info.get("cooperative") or {}
    fees = info.get("fees") or {}
    return {
        "name_full": coop.get("name_full", ""),
        "name_short": coop.get("name_short", "") or coop.get("name_full", ""),
        "inn": coop.get("inn", ""),
        "kpp": coop.get("kpp", ""),
        "ogrn": coop.get("ogrn", ""),
        "address": coop.get("legal_address", ""),
        "email": coop.get("email", ""),
        "phone": coop.get("phone", ""),
        "bank_name": coop.get("bank_name", ""),
        "bik": coop.get("bik", ""),
        "corr_account": coop.get("corr_account", ""),
        "settlement_account": coop.get("settlement_account", ""),
        "fee_entrance_org": int(fees.get("entrance_org", 0)),
        "fee_share_org": int(fees.get("share_org", 0)),
        "fee_entrance_ind": int(fees.get("entrance_ind", 0)),
        "fee_share_ind": int(fees.get("share_ind", 0)),
        "description": info.get("description", ""),
        "site": settings.base_url,
    }


async def install_cooperative(info: dict, settings) -> int:
    """Create or bring up to date this instance's cooperative (one row, by the instance's host); returns its id.

    Every worker process runs this at start: one transaction at a time, and the oldest row is kept if two
    were ever written."""
    domain = _ascii_host(settings.operator_host)
    values = cooperative_values(info, settings)
    mine = (Cooperative.domain == domain) & (Cooperative.is_operator == False)  # noqa: E712
    async with db.transaction():  # IMMEDIATE on SQLite: the workers take turns
        if db.engine().engine_type == "postgres":  # … and on PostgreSQL a lock of this one purpose
            await Cooperative.raw("SELECT pg_advisory_xact_lock(hashtext('portal.instance.cooperative'))")
        rows = await Cooperative.select(Cooperative.id, Cooperative.status).where(mine).order_by(Cooperative.id)
        if rows:
            keep = rows[0]["id"]
            await Cooperative.update({getattr(Cooperative, k): v for k, v in values.items()}).where(
                Cooperative.id == keep)
            for extra in rows[1:]:
                await Cooperative.delete().where(Cooperative.id == extra["id"])
            return keep
        created = await Cooperative.insert(Cooperative(**values, domain=domain, is_operator=False,
                                                       status="installing", created_at=now())).returning(
            Cooperative.id)
        return created[0]["id"]


async def stored_cooperative(settings) -> dict | None:
    """The cooperative an earlier start took from the operator, if any."""
    return await Cooperative.select(Cooperative.id, Cooperative.name_short).where(
        (Cooperative.domain == _ascii_host(settings.operator_host)) & (Cooperative.is_operator == False)  # noqa: E712
    ).first()


async def sync_from_operator(settings) -> dict:
    """Take this instance's cooperative from the operator and write it; returns the operator's answer (with
    ``cooperative_id``).

    Raises OperatorSyncError (logged) when the operator refuses (token, domain) — always — or cannot be reached
    and no earlier start stored the cooperative. An operator that is down for a while does not take down a
    cooperative's site that was installed before: the stored data is served (``{"stale": True, …}``) and the
    next start takes it again."""
    try:
        info = await fetch_connection(settings)
    except OperatorSyncError as exc:
        stored = None if exc.refused else await stored_cooperative(settings)
        if stored is None:
            log.error("Кооператив не получен от оператора: %s", exc)
            raise
        log.warning("Кооператив не обновлён — оператор недоступен, сайт работает с данными прошлого запуска: %s", exc)
        return {"stale": True, "cooperative_id": stored["id"]}
    cooperative_id = await install_cooperative(info, settings)
    log.info("Кооператив %s (%s) получен от оператора %s", info["cooperative"].get("name_short", ""),
             info["domain_unicode"], settings.operator_url)
    return {**info, "cooperative_id": cooperative_id}
