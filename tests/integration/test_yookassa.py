"""Bank card payments through ЮKassa, against a local server answering as ЮKassa's API (SQLite and PostgreSQL):
a payment is credited once, and only after the API itself says it succeeded."""

from __future__ import annotations

import asyncio
import re
import dataclasses
from typing import AsyncIterator, Iterator

import httpx
import pytest

from portal import db
from portal.accounts.tables import Member
from portal.audit.tables import AuditEvent
from portal.cooperatives.service import operator
from portal.clock import now
from portal.payments import service, yookassa
from portal.payments.tables import Invoice, Payment
from portal.settings import Settings
from tests.conftest import csrf_token
from tests.factories import MemberKey as Key
from tests.integration.test_join_and_sign import register
from tests.support.ports import free_port
from tests.support.yookassa import FakeYooKassa

WEBHOOK = "/api/v1/yookassa/notifications"


@pytest.fixture
def api() -> Iterator[FakeYooKassa]:
    fake = FakeYooKassa().start()
    try:
        yield fake
    finally:
        fake.stop()


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from portal.app import create_app, startup

    app = create_app(settings, run_mail_sender=False)
    await startup(settings)
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            yield c
    finally:
        await db.stop(settings)


def with_yookassa(settings: Settings, api_url: str, fake: FakeYooKassa) -> Settings:
    return dataclasses.replace(settings, yookassa_shop_id=fake.shop_id, yookassa_secret_key=fake.secret_key,
                               yookassa_api_url=api_url)


@pytest.fixture
async def shop(settings: Settings, api: FakeYooKassa) -> AsyncIterator[httpx.AsyncClient]:
    """The portal with ЮKassa configured to the local API server."""
    async for c in _client(with_yookassa(settings, api.url, api)):
        yield c


async def member_with_invoice(client: httpx.AsyncClient) -> tuple[dict, dict]:
    """A registered, logged-in member of the operator (an organization) with its fees invoice (4 000 ₽)."""
    await register(client, Key())
    member = await Member.select().first()
    invoice = await service.issue_fees_invoice(member, "organization", await operator())
    assert invoice["total"] == 400_000
    return member, invoice


async def pay_by_card(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/cabinet/payment/card", data={"_csrf_token": await csrf_token(client)})


async def checkout_url(client: httpx.AsyncClient, r: httpx.Response) -> str:
    """Where «Оплатить картой» takes the browser: a 303 to our page, which sends it on to ЮKassa (meta refresh)."""
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/payment/card/go", r.text
    page = await client.get("/cabinet/payment/card/go")
    assert page.status_code == 200
    link = re.search(r'id="card-payment-link" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert f'<meta http-equiv="refresh" content="0; url={link.replace("&", "&amp;")}">' in page.text
    return link


async def notify(client: httpx.AsyncClient, body) -> httpx.Response:
    """ЮKassa's notification: no session, no CSRF token."""
    kwargs = {"json": body} if not isinstance(body, (bytes, str)) else {"content": body}
    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver.local") as yookassa_side:
        return await yookassa_side.post(WEBHOOK, headers={"Content-Type": "application/json"}, **kwargs)


async def invoice_now(invoice_id: int) -> dict:
    return await Invoice.select().where(Invoice.id == invoice_id).first()


async def test_card_payment_is_created_as_the_api_says_and_credited_by_the_notification(shop, api):
    member, invoice = await member_with_invoice(shop)
    r = await pay_by_card(shop)
    payment = api.only_payment()
    url = await checkout_url(shop, r)
    assert url == payment["confirmation"]["confirmation_url"] and url.startswith(api.origin + "/checkout/")
    (create,) = api.creations
    assert create.idempotence_key and len(create.idempotence_key) <= 64
    assert create.body["amount"] == {"value": "4000.00", "currency": "RUB"} and create.body["capture"] is True
    assert create.body["confirmation"] == {"type": "redirect",
                                           "return_url": "http://testserver.local/cabinet/payment/card/return"}
    assert invoice["number"] in create.body["description"]
    assert create.body["metadata"] == {"invoice_id": str(invoice["id"]), "member_id": str(member["id"]),
                                       "cooperative_id": str(invoice["cooperative"])}
    assert (await yookassa.card_status(invoice["id"]))["status"] == "pending"
    assert (await invoice_now(invoice["id"]))["paid_amount"] == 0

    api.succeed(payment["id"])
    r = await notify(shop, api.notification(payment["id"], "payment.succeeded"))
    assert r.status_code == 200 and r.json() == {"status": "credited"}
    paid = await invoice_now(invoice["id"])
    assert (paid["status"], paid["paid_amount"]) == ("paid", 400_000)
    stored = await Payment.select().first()
    assert (stored["source"], stored["external_id"], stored["amount"], stored["status"], stored["invoice"]) == (
        "yookassa", payment["id"], 400_000, "credited", invoice["id"])
    assert stored["paid_on"] is not None
    assert (await yookassa.card_status(invoice["id"]))["status"] == "succeeded"

    # ЮKassa repeats the notification (it did not get our answer): answered, nothing counted twice.
    fetches = len(api.requests)
    for _ in range(2):
        r = await notify(shop, api.notification(payment["id"], "payment.succeeded"))
        assert r.status_code == 200 and r.json() == {"status": "repeat"}
    assert len(api.requests) == fetches, "a repeat of a credited payment is answered without asking the API"
    assert await Payment.count() == 1 and (await invoice_now(invoice["id"]))["paid_amount"] == 400_000
    assert await AuditEvent.count().where(AuditEvent.action == "payment.credited") == 1
    # The invoice is paid: «Оплатить картой» creates nothing more.
    r = await pay_by_card(shop)
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/payment" and len(api.payments) == 1
    r = await shop.get("/cabinet/payment/card/go")
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/payment"


async def test_card_payment_credited_when_the_member_comes_back_then_the_notification_is_a_repeat(shop, api):
    _, invoice = await member_with_invoice(shop)
    await pay_by_card(shop)
    payment = api.only_payment()
    # Back before paying: nothing happens, the payment is still waiting.
    r = await shop.get("/cabinet/payment/card/return")
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/payment"
    assert await Payment.count() == 0
    api.succeed(payment["id"])
    r = await shop.get("/cabinet/payment/card/return")
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/payment"
    assert (await invoice_now(invoice["id"]))["status"] == "paid"
    r = await notify(shop, api.notification(payment["id"]))
    assert r.status_code == 200 and r.json()["status"] == "repeat"
    r = await shop.get("/cabinet/payment/card/return")
    assert r.status_code == 303
    assert await Payment.count() == 1 and (await invoice_now(invoice["id"]))["paid_amount"] == 400_000


async def test_the_payer_pays_on_the_checkout_page_and_comes_back(shop, api):
    """As the browser goes: the portal's page → ЮKassa's checkout page → «Заплатить» → back to the portal."""
    _, invoice = await member_with_invoice(shop)
    url = await checkout_url(shop, await pay_by_card(shop))
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        assert page.status_code == 200 and "4000.00" in page.text and invoice["number"] in page.text
        pay = re.search(r"action='([^']+/pay[^']*)'", page.text).group(1).replace("&amp;", "&")
        back = await browser.post(api.origin + pay)
    assert back.status_code == 303 and back.headers["location"] == "http://testserver.local/cabinet/payment/card/return"
    r = await shop.get("/cabinet/payment/card/return")
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/payment"
    assert (await invoice_now(invoice["id"]))["status"] == "paid" and await Payment.count() == 1


async def test_the_member_back_and_the_notification_at_the_same_moment_credit_once(shop, api):
    _, invoice = await member_with_invoice(shop)
    await pay_by_card(shop)
    payment = api.succeed(api.only_payment()["id"])
    answers = await asyncio.gather(shop.get("/cabinet/payment/card/return"),
                                   notify(shop, api.notification(payment["id"])),
                                   notify(shop, api.notification(payment["id"])))
    assert [a.status_code for a in answers] == [303, 200, 200]
    assert sorted(a.json()["status"] for a in answers[1:]) in (["credited", "repeat"], ["repeat", "repeat"])
    assert await Payment.count() == 1 and (await invoice_now(invoice["id"]))["paid_amount"] == 400_000
    assert await AuditEvent.count().where(AuditEvent.action == "payment.credited") == 1


async def test_a_canceled_payment_credits_nothing_shows_why_and_the_next_click_is_a_new_payment(shop, api):
    _, invoice = await member_with_invoice(shop)
    await pay_by_card(shop)
    first = api.only_payment()
    api.cancel(first["id"], "insufficient_funds")
    r = await notify(shop, api.notification(first["id"], "payment.canceled"))
    assert r.status_code == 200 and r.json() == {"status": "canceled"}
    r = await shop.get("/cabinet/payment/card/return")
    assert r.status_code == 200
    assert "Оплата картой не состоялась" in r.text and "недостаточно средств" in r.text
    assert invoice["number"] in r.text and 'action="/cabinet/payment/card"' in r.text
    status = await yookassa.card_status(invoice["id"])
    assert (status["status"], status["reason"]) == ("canceled", "недостаточно средств")
    # The payment page (of a member whose application is signed) says it too, beside the card button.
    from portal.applications.tables import Application

    member = await Member.select().first()
    await Application.insert(Application(member=member["id"], applicant_type="organization", status="signed",
                                         created_at=now(), updated_at=now(), signed_at=now()))
    page = (await shop.get("/cabinet/payment")).text
    assert 'id="card-attempt">Прошлая оплата картой отменена: недостаточно средств.' in page
    assert await Payment.count() == 0 and (await invoice_now(invoice["id"]))["paid_amount"] == 0
    # A repeated cancellation is recorded once.
    await notify(shop, api.notification(first["id"], "payment.canceled"))
    assert await AuditEvent.count().where(AuditEvent.action == yookassa.CANCELED) == 1
    r = await shop.get("/cabinet/payment/card/go")  # nothing to go to: the payment is over
    assert r.status_code == 303 and r.headers["location"] == "/cabinet/payment"

    r = await pay_by_card(shop)
    assert len(api.payments) == 2
    second = next(p for p in api.payments.values() if p["id"] != first["id"])
    assert await checkout_url(shop, r) == second["confirmation"]["confirmation_url"]
    assert api.creations[0].idempotence_key != api.creations[1].idempotence_key
    api.succeed(second["id"])
    r = await notify(shop, api.notification(second["id"]))
    assert r.json() == {"status": "credited"} and (await invoice_now(invoice["id"]))["status"] == "paid"


async def test_what_is_left_after_a_transfer_is_paid_by_card(shop, api):
    _, invoice = await member_with_invoice(shop)
    await pay_by_card(shop)
    first = api.only_payment()
    assert first["amount"]["value"] == "4000.00"
    # A bank transfer of 1 000 ₽ arrives while the card payment waits: the next click asks for the rest only.
    await service.record_payment(invoice["cooperative"], "statement", "line-1", 100_000, invoice_id=invoice["id"])
    r = await pay_by_card(shop)
    assert len(api.payments) == 2
    rest = next(p for p in api.payments.values() if p["id"] != first["id"])
    assert rest["amount"] == {"value": "3000.00", "currency": "RUB"}
    assert await checkout_url(shop, r) == rest["confirmation"]["confirmation_url"]
    api.succeed(rest["id"])
    assert (await notify(shop, api.notification(rest["id"]))).json() == {"status": "credited"}
    paid = await invoice_now(invoice["id"])
    assert (paid["status"], paid["paid_amount"]) == ("paid", 400_000)


async def test_forged_notifications_credit_nothing(shop, api):
    member, invoice = await member_with_invoice(shop)
    # An id the API does not know, dressed as a success: answered 200 (ЮKassa-like retries stop), logged.
    forged = api.notification("2f6a8a7c-000f-5000-9000-1c2d3e4f5a6b", "payment.succeeded",
                              metadata={"invoice_id": str(invoice["id"]), "member_id": str(member["id"]),
                                        "cooperative_id": str(invoice["cooperative"])})
    r = await notify(shop, forged)
    assert r.status_code == 200 and r.json() == {"status": "ignored"}
    assert await AuditEvent.count().where(AuditEvent.action == "yookassa.notification.ignored") == 1

    # A real, still pending payment that the body claims succeeded (amount and all): the API is believed.
    await pay_by_card(shop)
    pending = api.only_payment()
    r = await notify(shop, api.notification(pending["id"], "payment.succeeded", status="succeeded", paid=True))
    assert r.status_code == 200 and r.json() == {"status": "pending"}
    assert await AuditEvent.count().where(AuditEvent.action == "yookassa.notification.mismatch") == 1

    # A payment that did succeed in the shop, but not one of the portal's: its metadata names another cooperative,
    # or nothing of ours.
    other = api.add_payment("4000.00", {"invoice_id": str(invoice["id"]), "member_id": str(member["id"]),
                                        "cooperative_id": str(invoice["cooperative"] + 1000)})
    alien = api.add_payment("10.00", {"order": "42"})
    for payment in (other, alien):
        r = await notify(shop, api.notification(payment["id"]))
        assert r.status_code == 200 and r.json() == {"status": "ignored"}
    assert await Payment.count() == 0 and (await invoice_now(invoice["id"]))["paid_amount"] == 0

    # Bodies that are not notifications: 400 with a reason, nothing asked of the API.
    asked = len(api.requests)
    for body in (b"not json", b"[1, 2]", {"type": "notification", "event": "payment.succeeded"},
                 {"type": "notification", "event": "payment.succeeded", "object": {"id": "../payments/x"}},
                 {"event": "payment.succeeded", "object": {"id": pending["id"]}}):
        r = await notify(shop, body)
        assert r.status_code == 400 and r.json()["error"], body
    assert len(api.requests) == asked and await Payment.count() == 0


async def test_a_double_click_creates_one_payment(shop, api):
    _, invoice = await member_with_invoice(shop)
    token = await csrf_token(shop)
    answers = await asyncio.gather(*[shop.post("/cabinet/payment/card", data={"_csrf_token": token})
                                     for _ in range(2)])
    payment = api.only_payment()
    assert [a.status_code for a in answers] == [303, 303]
    for answer in answers:
        assert await checkout_url(shop, answer) == payment["confirmation"]["confirmation_url"]
    assert len({c.idempotence_key for c in api.creations}) == 1
    # Clicked again later (the member came back without paying): the same payment, nothing new at ЮKassa.
    r = await pay_by_card(shop)
    assert await checkout_url(shop, r) == payment["confirmation"]["confirmation_url"] and len(api.payments) == 1
    created = await AuditEvent.count().where(AuditEvent.action == yookassa.CREATED)
    assert created == 1
    # htmx is told to go there itself.
    r = await shop.post("/cabinet/payment/card", data={"_csrf_token": token}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Redirect"] == payment["confirmation"]["confirmation_url"]


async def test_api_down_gives_a_russian_answer_and_changes_nothing(settings, api):
    async for client in _client(with_yookassa(settings, f"http://127.0.0.1:{free_port()}/v3", api)):
        _, invoice = await member_with_invoice(client)
        r = await pay_by_card(client)
        assert r.status_code == 503 and "ЮKassa сейчас не отвечает" in r.text and "по счёту" in r.text
        r = await notify(client, api.notification("2f6a8a7c-000f-5000-9000-1c2d3e4f5a6b"))
        assert r.status_code == 503  # ЮKassa repeats the notification later
        assert await yookassa.card_status(invoice["id"]) is None and await Payment.count() == 0


async def test_api_errors_and_refused_credentials_are_not_a_500(shop, api):
    _, invoice = await member_with_invoice(shop)
    api.fail_with = 500
    r = await pay_by_card(shop)
    assert r.status_code == 503 and "ЮKassa сейчас не отвечает" in r.text
    api.fail_with = None
    api.secret_key = "another-key"  # the shop's key was changed at ЮKassa
    r = await pay_by_card(shop)
    assert r.status_code == 503 and "ЮKassa сейчас не отвечает" in r.text
    assert api.payments == {} and await yookassa.card_status(invoice["id"]) is None


async def test_the_shop_s_credentials_and_the_idempotence_key_go_with_each_request(shop, api):
    await member_with_invoice(shop)
    await pay_by_card(shop)
    payment = api.only_payment()
    await shop.get("/cabinet/payment/card/return")
    assert [(r.method, r.path) for r in api.requests] == [("POST", "/v3/payments"), ("GET", f"/v3/payments/{payment['id']}")]
    assert api.requests[1].idempotence_key is None


async def test_without_yookassa_the_card_routes_are_not_there(client):
    await member_with_invoice(client)
    r = await pay_by_card(client)
    assert r.status_code == 404
    r = await client.get("/cabinet/payment/card/return")
    assert r.status_code == 404
    r = await client.get("/cabinet/payment/card/go")
    assert r.status_code == 404
    r = await notify(client, {"type": "notification", "event": "payment.succeeded", "object": {"id": "abc"}})
    assert r.status_code == 404
    assert await Payment.count() == 0


async def test_card_payment_needs_a_logged_in_member(shop):
    r = await shop.post("/cabinet/payment/card", data={"_csrf_token": await csrf_token(shop)})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
