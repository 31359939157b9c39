"""ЮKassa: amounts as the API writes them ↔ kopecks, exactly; the API's answers read strictly; the client against
a local server answering as ЮKassa's API; the API's address setting."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from portal.payments import yookassa
from portal.payments.yookassa import YooKassaClient, YooKassaError, YooKassaUnavailable, YooPayment, to_kopecks, to_value
from portal.settings import Settings, SettingsError, load_settings
from tests.support.ports import free_port
from tests.support.yookassa import FakeYooKassa


@pytest.mark.parametrize("value, kopecks", [
    ("4000.00", 400_000), ("4000", 400_000), ("0.01", 1), ("1.5", 150), ("100.10", 10_010), (" 12.34 ", 1234),
    ("0", 0), ("0.00", 0), ("1e2", 10_000), ("99999999.99", 9_999_999_999), (Decimal("400.00"), 40_000), (7, 700),
])
def test_amounts_become_kopecks_exactly(value, kopecks):
    assert to_kopecks(value) == kopecks and isinstance(to_kopecks(value), int)


@pytest.mark.parametrize("value", ["4000.001", "0.005", "-1.00", "NaN", "Infinity", "-Infinity", "", "abc", "1,50",
                                   "4 000.00", 4000.0, True, None])
def test_what_is_not_an_amount_in_kopecks_is_refused(value):
    with pytest.raises(ValueError):
        to_kopecks(value)


def test_kopecks_become_the_api_s_amount_and_back():
    assert to_value(400_000) == "4000.00" and to_value(1) == "0.01" and to_value(10_010) == "100.10"
    assert to_value(40_000) == "400.00" and to_value(99) == "0.99" and to_value(100) == "1.00"
    for kopecks in list(range(1, 1001)) + [123_456_789, 10**12 + 7]:
        assert to_kopecks(to_value(kopecks)) == kopecks
    for wrong in (0, -100, 1.5, "100", True):
        with pytest.raises(ValueError):
            to_value(wrong)


def payment_json(**changes):
    data = {"id": "2f6a8a7c-000f-5000-9000-1c2d3e4f5a6b", "status": "succeeded", "paid": True,
            "amount": {"value": "4000.00", "currency": "RUB"}, "captured_at": "2026-12-01T21:30:00.000Z",
            "metadata": {"invoice_id": "1", "member_id": 2}, "description": "счёт № В-2026-000001"}
    data.update(changes)
    return data


def test_a_payment_is_read_strictly_from_the_api_s_answer():
    p = YooPayment.from_api(payment_json())
    assert (p.id, p.status, p.paid, p.amount, p.currency) == (
        "2f6a8a7c-000f-5000-9000-1c2d3e4f5a6b", "succeeded", True, 400_000, "RUB")
    assert p.metadata == {"invoice_id": "1", "member_id": "2"}
    assert p.paid_on == dt.date(2026, 12, 2)  # 21:30 UTC is past midnight in Moscow
    assert YooPayment.from_api(payment_json(paid="true")).paid is False  # only JSON true is true
    canceled = YooPayment.from_api(payment_json(status="canceled", paid=False,
                                                cancellation_details={"party": "payment_network",
                                                                      "reason": "card_expired"}))
    assert canceled.cancellation_text == "истёк срок действия карты"
    assert YooPayment.from_api(payment_json(cancellation_details={"reason": "new"})).cancellation_text == "платёж отменён"
    for broken in (payment_json(id="../x"), payment_json(amount={"value": "40.001", "currency": "RUB"}),
                   payment_json(amount="4000"), payment_json(metadata=[1]), {"id": "abc"}, [], "x"):
        with pytest.raises(YooKassaError):
            YooPayment.from_api(broken)


def test_the_idempotence_key_is_stable_per_attempt():
    settings = Settings(secret_key="k1")
    invoice = {"number_key": "1:В-2026-000001", "issued_at": dt.datetime(2026, 12, 2, 8, tzinfo=dt.timezone.utc)}
    key = yookassa.idempotence_key(settings, invoice, 400_000, 1)
    assert key == yookassa.idempotence_key(settings, invoice, 400_000, 1) and len(key) <= 64
    others = {yookassa.idempotence_key(settings, invoice, 400_000, 2),
              yookassa.idempotence_key(settings, invoice, 300_000, 1),
              yookassa.idempotence_key(Settings(secret_key="k2"), invoice, 400_000, 1),
              yookassa.idempotence_key(settings, {**invoice, "issued_at": invoice["issued_at"] + dt.timedelta(seconds=1)},
                                       400_000, 1)}
    assert key not in others and len(others) == 4


@pytest.fixture
def api():
    fake = FakeYooKassa().start()
    yield fake
    fake.stop()


def client_for(fake: FakeYooKassa, url: str | None = None, secret: str | None = None) -> YooKassaClient:
    return YooKassaClient(Settings(yookassa_shop_id=fake.shop_id, yookassa_secret_key=secret or fake.secret_key,
                                   yookassa_api_url=url or fake.url))


async def test_the_client_creates_once_per_key_and_gets_back(api):
    client = client_for(api)
    args = dict(idempotence_key="k-1", return_url="https://portal.example/back", description="счёт № В-2026-000001",
                metadata={"invoice_id": 1})
    created = await client.create_payment(400_000, **args)
    again = await client.create_payment(400_000, **args)
    assert created.id == again.id and created.status == "pending" and created.amount == 400_000
    assert created.confirmation_url.startswith(api.origin) and len(api.payments) == 1
    with pytest.raises(YooKassaError):  # the same key for another payment: ЮKassa refuses it
        await client.create_payment(300_000, **args)
    api.succeed(created.id)
    fetched = await client.get_payment(created.id)
    assert (fetched.status, fetched.paid, fetched.metadata) == ("succeeded", True, {"invoice_id": "1"})
    assert await client.get_payment("2f6a8a7c-000f-5000-9000-1c2d3e4f5a6b") is None
    assert await client.get_payment("../../payments") is None and api.requests[-1].path.startswith("/v3/payments/2f6a")


async def test_the_client_says_when_the_api_is_down_or_refuses(api):
    with pytest.raises(YooKassaUnavailable):
        await client_for(api, url=f"http://127.0.0.1:{free_port()}/v3").get_payment("abc")
    api.fail_with = 503
    with pytest.raises(YooKassaUnavailable):
        await client_for(api).get_payment("abc")
    api.fail_with = None
    with pytest.raises(YooKassaError) as refused:
        await client_for(api, secret="wrong").get_payment("abc")
    assert not isinstance(refused.value, YooKassaUnavailable) and "invalid_credentials" in str(refused.value)


def test_the_local_api_posts_notifications_as_yookassa_does(api):
    """The checkout page of the local API server: «Заплатить» sends the payer back and notifies the shop."""
    import json
    import threading
    import urllib.error
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Shop(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200 if len(received) == 1 else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

    shop = ThreadingHTTPServer(("127.0.0.1", free_port()), Shop)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    try:
        api.notify_url, api.notify_times = f"http://127.0.0.1:{shop.server_address[1]}/notify", 2
        created = api._new_payment({"amount": {"value": "400.00", "currency": "RUB"}, "description": "счёт",
                                    "confirmation": {"type": "redirect", "return_url": "https://shop.example/back"}})
        page = urllib.request.urlopen(created["confirmation"]["confirmation_url"]).read().decode()
        assert "400.00" in page and "Заплатить" in page

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(urllib.request.Request(f"{api.origin}/checkout/pay?orderId={created['id']}", data=b"",
                                               method="POST"))
            raise AssertionError("no redirect")
        except urllib.error.HTTPError as answer:
            assert answer.code == 303 and answer.headers["Location"] == "https://shop.example/back"
        assert api.payments[created["id"]]["status"] == "succeeded"
        assert [n["event"] for n in received] == ["payment.succeeded"] * 2
        assert received[0]["type"] == "notification" and received[0]["object"]["id"] == created["id"]
        assert api.deliveries == [("payment.succeeded", 200), ("payment.succeeded", 503)]
    finally:
        shop.shutdown()
        shop.server_close()


def test_the_api_url_setting():
    base = {"PORTAL_SECRET_KEY": "x", "PORTAL_DATA_DIR": "/tmp"}
    assert load_settings(base).yookassa_api_url == "https://api.yookassa.ru/v3"
    assert load_settings({**base, "PORTAL_YOOKASSA_API_URL": "http://127.0.0.1:9/v3/"}).yookassa_api_url == \
        "http://127.0.0.1:9/v3"
    for wrong in ("ftp://api.yookassa.ru/v3", "api.yookassa.ru", "https://"):
        with pytest.raises(SettingsError):
            load_settings({**base, "PORTAL_YOOKASSA_API_URL": wrong})
