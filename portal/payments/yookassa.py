"""Bank card payments through ЮKassa (when PORTAL_YOOKASSA_SHOP_ID and PORTAL_YOOKASSA_SECRET_KEY are set).

The official ``yookassa`` SDK is synchronous (it calls the API through ``requests``): every call would block the
event loop of the async server, or need a thread of its own. The API is small — create a payment, get a payment —
so this module speaks it directly over ``httpx``'s async client (HTTP Basic auth ``shop_id:secret_key``,
``Idempotence-Key`` on creation, timeouts), following https://yookassa.ru/developers/api.

The flow:

* «Оплатить картой» (``POST /cabinet/payment/card``) creates a payment for what is left to pay on the member's
  fees invoice and sends the member to its confirmation URL (through ``GET /cabinet/payment/card/go``: a 303
  straight to ЮKassa would be blocked by the browser, the pages' CSP allowing ``form-action 'self'`` only). The Idempotence-Key is derived from the invoice and
  the attempt's number (a canceled payment starts the next attempt), so a double click — even two requests at the
  same moment — creates one payment. The attempts are kept in the audit log (``yookassa.payment.created``,
  ``yookassa.payment.canceled`` on the invoice): no table of their own.
* ЮKassa sends the member back to ``GET /cabinet/payment/card/return`` and posts a notification to
  ``POST /api/v1/yookassa/notifications``. Neither is believed: the payment is fetched back from the API by its id,
  and it is credited (``service.record_payment``, exactly once) only if the API says it ``succeeded``, is paid, in
  roubles, and its metadata — which only this portal writes, on creation — names an invoice of this cooperative.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import httpx
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide

from portal import db
from portal.accounts.guards import current_member, member_guard
from portal.audit.service import record
from portal.audit.tables import AuditEvent
from portal.clock import MOSCOW
from portal.cooperatives.service import operator
from portal.origin import SYSTEM, Origin, origin_of
from portal.payments import service
from portal.payments.tables import Invoice, Payment
from portal.pricing.tariff import format_rub
from portal.settings import Settings
from portal.web import PageError, is_htmx, redirect, render

log = logging.getLogger("portal.yookassa")

SOURCE = "yookassa"
CURRENCY = "RUB"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
PAYMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # ЮKassa's ids are UUID-like; anything else is not one of theirs
CREATED, CANCELED = "yookassa.payment.created", "yookassa.payment.canceled"

UNAVAILABLE = ("ЮKassa сейчас не отвечает, поэтому оплатить картой не получилось. Попробуйте ещё раз через "
               "несколько минут или оплатите взносы по счёту банковским переводом.")
NOT_CONFIRMED = ("ЮKassa сейчас не отвечает, поэтому мы пока не знаем, прошёл ли платёж. Если вы оплатили, "
                 "взносы будут зачислены автоматически, как только ЮKassa подтвердит платёж.")
CANCELLATION_REASONS = {
    "3d_secure_failed": "не пройдена проверка 3-D Secure",
    "call_issuer": "банк, выпустивший карту, отклонил платёж — обратитесь в банк",
    "card_expired": "истёк срок действия карты",
    "country_forbidden": "карты этой страны не принимаются",
    "expired_on_confirmation": "платёж не был подтверждён вовремя",
    "fraud_suspected": "платёж заблокирован из-за подозрения в мошенничестве",
    "general_decline": "платёж отклонён",
    "identification_required": "превышен лимит платежей для анонимного кошелька",
    "insufficient_funds": "недостаточно средств",
    "internal_timeout": "технические неполадки на стороне ЮKassa",
    "invalid_card_number": "неверный номер карты",
    "invalid_csc": "неверный код CVV2 (CVC2, CID)",
    "issuer_unavailable": "банк, выпустивший карту, недоступен",
    "payment_method_limit_exceeded": "исчерпан лимит платежей этим способом",
    "payment_method_restricted": "операции этим способом запрещены",
    "permission_revoked": "отозвано разрешение на автоплатежи",
    "canceled_by_merchant": "платёж отменён кооперативом",
}


class YooKassaError(Exception):
    """ЮKassa refused a request or answered something that is not its API (details for the log)."""


class YooKassaUnavailable(YooKassaError):
    """ЮKassa did not answer (connection refused, timeout, 5xx): the request may be repeated later."""


# --------------------------------------------------------------------------- amounts


def to_kopecks(value: str | Decimal | int) -> int:
    """ЮKassa's amount («4000.00», a string of roubles) → kopecks, exactly: no float, no rounding.
    More than two decimal places, a negative or non-finite amount is an error, not a guess."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"an amount is a decimal string, not {type(value).__name__}")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"not an amount: {value!r}")
    kopecks = amount * 100
    if kopecks != kopecks.to_integral_value():
        raise ValueError(f"more than two decimal places: {value!r}")
    return int(kopecks)


def to_value(kopecks: int) -> str:
    """Kopecks → ЮKassa's amount value: 400000 → «4000.00»."""
    if isinstance(kopecks, bool) or not isinstance(kopecks, int) or kopecks <= 0:
        raise ValueError("an amount to pay is a positive integer of kopecks")
    return f"{kopecks // 100}.{kopecks % 100:02d}"


# --------------------------------------------------------------------------- the API


@dataclass(frozen=True)
class YooPayment:
    """A payment as the API returned it (only what the portal reads)."""

    id: str
    status: str  # pending | waiting_for_capture | succeeded | canceled
    paid: bool
    amount: int  # kopecks
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)
    description: str = ""
    confirmation_url: str = ""
    captured_at: str = ""
    cancellation_reason: str = ""

    @classmethod
    def from_api(cls, data: Any) -> "YooPayment":
        try:
            if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not PAYMENT_ID.match(data["id"]):
                raise ValueError("no payment id")
            amount = data["amount"]
            metadata = data.get("metadata") or {}
            confirmation = data.get("confirmation") or {}
            cancellation = data.get("cancellation_details") or {}
            if not isinstance(metadata, dict) or not isinstance(confirmation, dict):
                raise ValueError("metadata and confirmation are objects")
            return cls(
                id=data["id"], status=str(data["status"]), paid=data.get("paid") is True,
                amount=to_kopecks(str(amount["value"])), currency=str(amount["currency"]),
                metadata={str(k): str(v) for k, v in metadata.items()},
                description=str(data.get("description") or ""),
                confirmation_url=str(confirmation.get("confirmation_url") or ""),
                captured_at=str(data.get("captured_at") or ""),
                cancellation_reason=str(cancellation.get("reason") or "") if isinstance(cancellation, dict) else "",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise YooKassaError(f"ЮKassa answered something that is not a payment: {exc}") from None

    @property
    def paid_on(self) -> dt.date | None:
        try:
            return dt.datetime.fromisoformat(self.captured_at.replace("Z", "+00:00")).astimezone(MOSCOW).date()
        except ValueError:
            return None

    @property
    def cancellation_text(self) -> str:
        return CANCELLATION_REASONS.get(self.cancellation_reason, "платёж отменён")


def configured(settings: Settings) -> bool:
    return bool(settings.yookassa_shop_id and settings.yookassa_secret_key)


class YooKassaClient:
    """``create_payment`` and ``get_payment`` of ЮKassa's API v3, async."""

    def __init__(self, settings: Settings, *, timeout: httpx.Timeout = TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = settings.yookassa_api_url.rstrip("/") + "/"
        self.auth = httpx.BasicAuth(settings.yookassa_shop_id, settings.yookassa_secret_key)
        self.timeout = timeout
        self.transport = transport

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            async with httpx.AsyncClient(base_url=self.base_url, auth=self.auth, timeout=self.timeout,
                                         transport=self.transport, follow_redirects=False) as client:
                response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise YooKassaUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise YooKassaUnavailable(f"{method} {path}: HTTP {response.status_code}")
        return response

    @staticmethod
    def _payment(response: httpx.Response, what: str) -> YooPayment:
        if response.status_code != 200:
            try:
                error = response.json()
                reason = f"{error.get('code')}: {error.get('description')}"
            except (ValueError, AttributeError):
                reason = response.text[:200]
            raise YooKassaError(f"{what}: HTTP {response.status_code} {reason}")
        try:
            data = response.json()
        except ValueError:
            raise YooKassaError(f"{what}: not JSON") from None
        return YooPayment.from_api(data)

    async def create_payment(self, amount: int, *, idempotence_key: str, return_url: str, description: str,
                             metadata: Mapping[str, str | int]) -> YooPayment:
        """A one-stage payment (capture) of ``amount`` kopecks, confirmed by redirecting the payer."""
        body = {
            "amount": {"value": to_value(amount), "currency": CURRENCY},
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": return_url},
            "description": description[:128],
            "metadata": {str(k): str(v) for k, v in metadata.items()},
        }
        response = await self._call("POST", "payments", json=body, headers={"Idempotence-Key": idempotence_key})
        payment = self._payment(response, "create payment")
        if not payment.confirmation_url.startswith(("https://", "http://")):
            raise YooKassaError(f"create payment: no confirmation URL in payment {payment.id}")
        return payment

    async def get_payment(self, payment_id: str) -> YooPayment | None:
        """The payment as ЮKassa knows it; None when it does not know such a payment."""
        if not PAYMENT_ID.match(payment_id):
            return None
        response = await self._call("GET", f"payments/{payment_id}")
        if response.status_code == 404:
            return None
        payment = self._payment(response, f"get payment {payment_id}")
        if payment.id != payment_id:
            raise YooKassaError(f"get payment {payment_id}: the API returned payment {payment.id}")
        return payment


# --------------------------------------------------------------------------- attempts and crediting


def _details(row: Mapping[str, Any]) -> dict:
    details = row["details"]
    return json.loads(details) if isinstance(details, str) else dict(details or {})


async def attempts(invoice_id: int) -> list[dict]:
    """The card payments made for the invoice, oldest first: {payment_id, status (pending | canceled | succeeded:
    credited), reason (Russian, of a cancellation), confirmation_url, idempotence_key, created_at}."""
    rows = await AuditEvent.select(AuditEvent.action, AuditEvent.details, AuditEvent.created_at).where(
        (AuditEvent.object_type == "invoice") & (AuditEvent.object_id == str(invoice_id))
        & AuditEvent.action.is_in([CREATED, CANCELED])).order_by(AuditEvent.id)
    found: dict[str, dict] = {}
    for row in rows:
        details = _details(row)
        payment_id = details.get("payment_id", "")
        if row["action"] == CREATED:
            found.setdefault(payment_id, {"payment_id": payment_id, "status": "pending", "reason": "",
                                          "confirmation_url": details.get("confirmation_url", ""),
                                          "idempotence_key": details.get("idempotence_key", ""),
                                          "created_at": row["created_at"]})
        elif payment_id in found:
            found[payment_id].update(status="canceled", reason=details.get("reason", ""))
    if found:
        credited = await Payment.select(Payment.external_id).where(
            (Payment.invoice == invoice_id) & (Payment.source == SOURCE))
        for row in credited:
            if row["external_id"] in found:
                found[row["external_id"]]["status"] = "succeeded"
    return list(found.values())


async def card_status(invoice_id: int) -> dict | None:
    """The latest card payment of the invoice, for the payment page: None, or {"status": "pending" | "canceled" |
    "succeeded", "reason": Russian text of a cancellation, …} (see ``attempts``)."""
    found = await attempts(invoice_id)
    return found[-1] if found else None


def idempotence_key(settings: Settings, invoice: Mapping[str, Any], amount: int, attempt: int) -> str:
    """The same for every click of one attempt (so ЮKassa creates one payment), new after a cancellation or
    a change of the amount; unguessable, and different for an invoice of a re-created database."""
    issued = invoice["issued_at"].isoformat() if isinstance(invoice["issued_at"], dt.datetime) else str(invoice["issued_at"])
    message = f"yookassa:{invoice['number_key']}:{issued}:{amount}:{attempt}".encode()
    return hmac.new(settings.secret_bytes, message, hashlib.sha256).hexdigest()[:64]


async def _invoice_named_by(payment: YooPayment, cooperative_id: int) -> dict | None:
    """The invoice the payment's metadata (written by this portal on creation) names, if it is this cooperative's."""
    try:
        invoice_id = int(payment.metadata["invoice_id"])
        member_id = int(payment.metadata["member_id"])
        named_cooperative = int(payment.metadata["cooperative_id"])
    except (KeyError, ValueError):
        return None
    if named_cooperative != cooperative_id:
        return None
    return await Invoice.select().where(
        (Invoice.id == invoice_id) & (Invoice.cooperative == cooperative_id) & (Invoice.member == member_id)).first()


async def _ignored(payment_id: str, reason: str, origin: Origin, action: str = "yookassa.notification.ignored",
                   **details: Any) -> str:
    log.warning("ЮKassa payment %s: %s", payment_id, reason)
    await record(action, actor_type="visitor", actor_label="ЮKassa",
                 object_type="yookassa_payment", object_id=payment_id[:64], origin=origin,
                 details={"reason": reason, **details})
    return "ignored"


async def settle(payment: YooPayment, origin: Origin = SYSTEM) -> str:
    """Act on a payment fetched from the API: credit it once if it succeeded, note its cancellation.
    Returns credited | repeat | canceled | pending | ignored."""
    cooperative = await operator()
    invoice = await _invoice_named_by(payment, cooperative["id"])
    if invoice is None:
        return await _ignored(payment.id, "the metadata names no invoice of this cooperative", origin,
                              status=payment.status, metadata=payment.metadata)
    if payment.status == "succeeded":
        if not payment.paid or payment.currency != CURRENCY or payment.amount <= 0:
            return await _ignored(payment.id, "succeeded but not paid in roubles", origin, paid=payment.paid,
                                  currency=payment.currency, amount=payment.amount)
        for attempt in range(3):
            try:
                credited = await service.record_payment(
                    cooperative["id"], SOURCE, payment.id, payment.amount, invoice_id=invoice["id"],
                    paid_on=payment.paid_on, reference=payment.id, purpose=payment.description,
                    actor=("system", "", "ЮKassa"), origin=origin)
                return "credited" if credited.created else "repeat"
            except Exception:
                # The member's return and ЮKassa's notification often arrive together: the one that loses the
                # race (the invoice changed under it, or the payment's unique key was just taken) looks again and
                # finds the payment stored — a repeat. Anything else fails again and is raised.
                if attempt == 2:
                    raise
                log.info("ЮKassa payment %s: credited concurrently, looking again", payment.id)
        raise AssertionError("unreachable")
    if payment.status == "canceled":
        async with db.transaction():
            await _lock(invoice["id"])
            known = {a["payment_id"]: a for a in await attempts(invoice["id"])}
            if known.get(payment.id, {}).get("status") != "canceled":
                if payment.id not in known:  # created by a request that did not live to record it
                    await _record_created(invoice, payment, "", origin)
                await record(CANCELED, actor_type="system", actor_label="ЮKassa", object_type="invoice",
                             object_id=invoice["id"], origin=origin,
                             details={"payment_id": payment.id, "reason": payment.cancellation_text,
                                      "code": payment.cancellation_reason})
        return "canceled"
    return "pending"


async def _lock(invoice_id: int) -> None:
    """Inside a transaction: one request at a time records the invoice's card attempts (SQLite's write
    transaction is exclusive already; PostgreSQL locks the invoice's row)."""
    if db.engine().engine_type == "postgres":
        await Invoice.select(Invoice.id).where(Invoice.id == invoice_id).lock_rows().first()


async def _record_created(invoice: Mapping[str, Any], payment: YooPayment, key: str, origin: Origin,
                          member: Mapping[str, Any] | None = None) -> None:
    """Once per payment (two clicks at once get the same payment from ЮKassa: one of them records it)."""
    async with db.transaction():
        await _lock(invoice["id"])
        if any(a["payment_id"] == payment.id for a in await attempts(invoice["id"])):
            return
        await record(CREATED, actor_type="member" if member else "system", actor_id=member["id"] if member else "",
                     actor_label=member["email"] if member else "ЮKassa", object_type="invoice",
                     object_id=invoice["id"], origin=origin,
                     details={"payment_id": payment.id, "idempotence_key": key, "amount": payment.amount,
                              "confirmation_url": payment.confirmation_url})


async def already_credited(cooperative_id: int, payment_id: str) -> bool:
    return await Payment.exists().where(Payment.dedup_key == f"{cooperative_id}:{SOURCE}:{payment_id}")


async def start_payment(settings: Settings, member: Mapping[str, Any], invoice: Mapping[str, Any],
                        origin: Origin = SYSTEM, client: YooKassaClient | None = None) -> str | None:
    """Where to send the member to pay the rest of the invoice by card (the confirmation URL), or None when
    nothing is left to pay. A pending payment for that amount is reused (another click, or the member came back
    without paying); one for another amount (a transfer arrived meanwhile) is left to expire. Raises YooKassaError."""
    client = client or YooKassaClient(settings)
    found = await attempts(invoice["id"])
    if found and found[-1]["status"] == "pending":
        latest = await client.get_payment(found[-1]["payment_id"])
        if latest is not None:
            outcome = await settle(latest, origin)
            if outcome in ("credited", "repeat"):
                return None
            fresh = await Invoice.select().where(Invoice.id == invoice["id"]).first()
            if outcome == "pending" and latest.confirmation_url and latest.amount == fresh["total"] - fresh["paid_amount"]:
                return latest.confirmation_url
        found = await attempts(invoice["id"])
    invoice = await Invoice.select().where(Invoice.id == invoice["id"]).first()
    left = invoice["total"] - invoice["paid_amount"]
    if invoice["status"] != "issued" or left <= 0:
        return None
    attempt = 1 + sum(1 for a in found if a["status"] == "canceled")
    key = idempotence_key(settings, invoice, left, attempt)
    payment = await client.create_payment(
        left, idempotence_key=key, return_url=f"{settings.base_url}/cabinet/payment/card/return",
        description=f"Вступительный и минимальный паевой взносы, счёт № {invoice['number']}",
        metadata={"invoice_id": invoice["id"], "member_id": member["id"], "cooperative_id": invoice["cooperative"]})
    await _record_created(invoice, payment, key, origin, member)
    return payment.confirmation_url


# --------------------------------------------------------------------------- routes

def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    if not configured(settings):
        raise PageError(status_code=404)
    return settings


class CardPaymentController(Controller):
    """«Оплатить картой» and the page ЮKassa sends the member back to."""

    path = "/cabinet/payment/card"
    guards = [member_guard]
    dependencies = {"member": Provide(current_member)}

    @post("/")
    async def pay(self, request: Request, member: NamedDependency[dict]) -> Response:
        settings = _settings(request)
        invoice = await service.open_fees_invoice(member["id"])
        if invoice is None or invoice["status"] != "issued":
            return redirect("/cabinet/payment")
        try:
            url = await start_payment(settings, member, invoice, origin_of(request))
        except YooKassaError as exc:
            log.error("ЮKassa: a card payment for invoice %s was not created: %s", invoice["number"], exc)
            raise PageError(status_code=503, detail=UNAVAILABLE)
        if url is None:
            return redirect("/cabinet/payment")
        if is_htmx(request):  # htmx navigates itself (an XHR cannot follow a redirect to ЮKassa)
            return Response(content="", status_code=200, headers={"HX-Redirect": url})
        # Not a 303 to ЮKassa: the form's page allows form-action 'self' only (CSP), and browsers hold a form's
        # redirects to that too. A page of ours, reached by a same-origin 303, sends the member on.
        return redirect("/cabinet/payment/card/go")

    @get("/go")
    async def go(self, request: Request, member: NamedDependency[dict]) -> Response:
        """The page that takes the member to ЮKassa's confirmation page (meta refresh, and a link)."""
        _settings(request)
        invoice = await service.open_fees_invoice(member["id"])
        latest = await card_status(invoice["id"]) if invoice is not None and invoice["status"] == "issued" else None
        url = latest["confirmation_url"] if latest and latest["status"] == "pending" else ""
        if not url.startswith(("https://", "http://")):
            return redirect("/cabinet/payment")
        amount = format_rub(invoice["total"] - invoice["paid_amount"])
        return render(request, "payments/card_go.html", {"url": url, "invoice": invoice, "amount": amount})

    @get("/return")
    async def back(self, request: Request, member: NamedDependency[dict]) -> Response:
        settings = _settings(request)
        invoice = await service.open_fees_invoice(member["id"])
        latest = await card_status(invoice["id"]) if invoice is not None else None
        if latest is None:
            return redirect("/cabinet/payment")
        if latest["status"] == "pending":
            try:
                payment = await YooKassaClient(settings).get_payment(latest["payment_id"])
            except YooKassaError as exc:
                log.error("ЮKassa: payment %s not fetched on return: %s", latest["payment_id"], exc)
                raise PageError(status_code=503, detail=NOT_CONFIRMED)
            if payment is None:
                return redirect("/cabinet/payment")
            if await settle(payment, origin_of(request)) != "canceled":
                return redirect("/cabinet/payment")
            latest = await card_status(invoice["id"])
        if latest["status"] != "canceled":
            return redirect("/cabinet/payment")
        return render(request, "payments/card_canceled.html",
                      {"member": member, "invoice": invoice, "attempt": latest})


@post("/api/v1/yookassa/notifications", exclude_from_csrf=True, opt={"skip_session": True}, status_code=200)
async def yookassa_notification(request: Request) -> Response:
    """ЮKassa's HTTP notification. Its body only says which payment to look at: the payment is fetched from the
    API and acted on as the API describes it. 200 tells ЮKassa to stop repeating it; 503 asks for a repeat."""
    settings = _settings(request)
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return Response({"error": "тело уведомления — не JSON / body is not JSON"}, status_code=400)
    if not isinstance(body, dict) or body.get("type") != "notification" or not isinstance(body.get("event"), str) \
            or not isinstance(body.get("object"), dict) or not isinstance(body["object"].get("id"), str):
        return Response({"error": "это не уведомление ЮKassa / not a ЮKassa notification"}, status_code=400)
    event, payment_id = body["event"], body["object"]["id"]
    if not PAYMENT_ID.match(payment_id):
        return Response({"error": "неверный идентификатор объекта / malformed object id"}, status_code=400)
    if not event.startswith("payment."):
        return Response({"status": "ignored"})  # refunds, payouts, deals: nothing of the fees
    origin = origin_of(request)
    cooperative = await operator()
    if await already_credited(cooperative["id"], payment_id):
        return Response({"status": "repeat"})
    try:
        payment = await YooKassaClient(settings).get_payment(payment_id)
    except YooKassaError as exc:
        log.error("ЮKassa: payment %s of a notification not fetched: %s", payment_id, exc)
        return Response({"error": "ЮKassa API недоступен, повторите позже / API unavailable"}, status_code=503)
    if payment is None:
        return Response({"status": await _ignored(payment_id, "the API does not know this payment", origin,
                                                  event=event)})
    claimed = body["object"].get("status")
    if isinstance(claimed, str) and claimed != payment.status:
        await _ignored(payment_id, f"the notification says {claimed!r}, the API says {payment.status!r}", origin,
                       "yookassa.notification.mismatch", event=event)
    return Response({"status": await settle(payment, origin)})
