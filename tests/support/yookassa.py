"""A local HTTP server that answers as ЮKassa's API v3 does (https://yookassa.ru/developers/api), for the tests.

``POST /v3/payments`` (HTTP Basic auth shop_id:secret_key, an ``Idempotence-Key`` header: the same key with the
same body returns the same payment, with another body an error) and ``GET /v3/payments/{id}`` (404 ``not_found``
for an unknown id). The test plays the payer and ЮKassa's processing: ``succeed(id)``, ``cancel(id, reason)``;
``notification(id, event)`` is the body ЮKassa would post to the shop; ``fail_with = 503`` makes the API fail.

For a browser, the confirmation URL is a checkout page of this server with «Заплатить» and «Отменить»: each marks
the payment, sends the payer back to the return URL and — when ``notify_url`` is set — posts the notification
there, as ЮKassa does (``notify_times`` = 2 repeats it; what the shop answered is in ``deliveries``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import html
import threading
import urllib.error
import urllib.request
import uuid
from copy import deepcopy
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.ports import free_port

AMOUNT = re.compile(r"^\d{1,10}(\.\d{1,2})?$")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Request:
    method: str
    path: str
    idempotence_key: str | None
    body: Any


@dataclass
class FakeYooKassa:
    shop_id: str = "506751"
    secret_key: str = "test_secret-key-of-the-shop"
    payments: dict[str, dict] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    fail_with: int | None = None  # answer every request with this status (503: «ЮKassa is down»)
    notify_url: str | None = None  # the shop's notification URL: the checkout page posts there
    notify_times: int = 1
    deliveries: list[tuple[str, int]] = field(default_factory=list)  # (event, the shop's HTTP status)
    _keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (the body's JSON, payment id)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """PORTAL_YOOKASSA_API_URL for this server."""
        return f"{self.origin}/v3"

    def start(self) -> "FakeYooKassa":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-yookassa", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------------ what the test does

    @property
    def creations(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v3/payments"]

    def only_payment(self) -> dict:
        assert len(self.payments) == 1, f"{len(self.payments)} payments at ЮKassa"
        return next(iter(self.payments.values()))

    def succeed(self, payment_id: str) -> dict:
        """The payer confirmed, the money is captured (capture: true)."""
        with self._lock:
            p = self.payments[payment_id]
            p.update(status="succeeded", paid=True, captured_at=_now(), refundable=True,
                     income_amount={"value": p["amount"]["value"], "currency": p["amount"]["currency"]},
                     authorization_details={"rrn": "603668680243", "auth_code": "000000",
                                            "three_d_secure": {"applied": True}},
                     payment_method={"type": "bank_card", "id": payment_id, "saved": False,
                                     "card": {"first6": "555555", "last4": "4477", "expiry_month": "07",
                                              "expiry_year": "2030", "card_type": "MasterCard"}})
            p.pop("confirmation", None)
            return deepcopy(p)

    def cancel(self, payment_id: str, reason: str = "insufficient_funds", party: str = "payment_network") -> dict:
        with self._lock:
            p = self.payments[payment_id]
            p.update(status="canceled", paid=False, cancellation_details={"party": party, "reason": reason})
            p.pop("confirmation", None)
            return deepcopy(p)

    def add_payment(self, amount: str, metadata: dict[str, str], status: str = "succeeded") -> dict:
        """A payment made in the shop by someone else (not through the portal)."""
        with self._lock:
            p = self._new_payment({"amount": {"value": amount, "currency": "RUB"}, "metadata": metadata,
                                   "description": "", "confirmation": {"type": "redirect",
                                                                       "return_url": "https://example.org/"}})
            if status == "succeeded":
                p.update(status="succeeded", paid=True, captured_at=_now())
            return deepcopy(p)

    def notification(self, payment_id: str, event: str = "payment.succeeded", **changes: Any) -> dict:
        """The body ЮKassa posts to the shop's notification URL."""
        with self._lock:
            obj = deepcopy(self.payments.get(payment_id, {"id": payment_id, "status": "succeeded", "paid": True,
                                                          "amount": {"value": "4000.00", "currency": "RUB"},
                                                          "metadata": {}}))
        obj.update(changes)
        return {"type": "notification", "event": event, "object": obj}

    # ------------------------------------------------------------------ the API

    def _new_payment(self, body: dict) -> dict:
        payment_id = str(uuid.uuid4())
        payment = {
            "id": payment_id, "status": "pending", "paid": False, "amount": body["amount"],
            "confirmation": {"type": "redirect", "return_url": body["confirmation"]["return_url"],
                             "confirmation_url": f"{self.origin}/checkout/payments/v2/contract?orderId={payment_id}"},
            "created_at": _now(), "description": body.get("description", ""), "metadata": body.get("metadata", {}),
            "recipient": {"account_id": self.shop_id, "gateway_id": "2266994"}, "refundable": False, "test": True,
        }
        self.payments[payment_id] = payment
        return payment

    def deliver(self, payment_id: str, event: str) -> None:
        """Post the notification to ``notify_url`` (``notify_times`` times), as ЮKassa does after a payment."""
        if not self.notify_url:
            return
        for _ in range(self.notify_times):
            data = json.dumps(self.notification(payment_id, event)).encode()
            request = urllib.request.Request(self.notify_url, data=data, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            with self._lock:
                self.deliveries.append((event, status))

    def _checkout(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """The payer's page: GET shows the payment, POST …/pay or …/cancel decides it and goes back to the shop."""
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        url = urlsplit(handler.path)
        payment_id = parse_qs(url.query).get("orderId", [""])[0]
        with self._lock:
            payment = deepcopy(self.payments.get(payment_id))
        if payment is None or (method == "POST" and payment["status"] != "pending"):
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if method == "POST":
            return_url = payment["confirmation"]["return_url"]
            if url.path.endswith("/pay"):
                self.succeed(payment_id)
                event = "payment.succeeded"
            else:
                self.cancel(payment_id, "expired_on_confirmation", "yoo_money")
                event = "payment.canceled"
            self.deliver(payment_id, event)
            handler.send_response(303)
            handler.send_header("Location", return_url)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        amount = html.escape(payment["amount"]["value"])
        query = f"orderId={html.escape(payment_id)}"
        page = (f"<!doctype html><html lang=ru><meta charset=utf-8><title>ЮKassa</title>"
                f"<h1>Оплата {amount} ₽</h1><p>{html.escape(payment['description'])}</p>"
                f"<form method=post action='/checkout/pay?{query}'><button id=pay>Заплатить</button></form>"
                f"<form method=post action='/checkout/cancel?{query}'><button id=cancel>Отменить</button></form>"
                ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        handler.wfile.write(page)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        if handler.path.startswith("/checkout/"):
            return self._checkout(handler, method)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        key = handler.headers.get("Idempotence-Key")
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(Request(method, path, key, body))
        status, answer = self._answer(handler, method, path, key, body, raw)
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _error(status: int, code: str, description: str, parameter: str | None = None) -> tuple[int, dict]:
        error = {"type": "error", "id": str(uuid.uuid4()), "code": code, "description": description}
        if parameter:
            error["parameter"] = parameter
        return status, error

    def _answer(self, handler: BaseHTTPRequestHandler, method: str, path: str, key: str | None, body: Any,
                raw: bytes) -> tuple[int, dict]:
        if self.fail_with:
            return self._error(self.fail_with, "internal_server_error", "Internal server error")
        expected = "Basic " + base64.b64encode(f"{self.shop_id}:{self.secret_key}".encode()).decode()
        if handler.headers.get("Authorization") != expected:
            return self._error(401, "invalid_credentials", "Basic authentication failed")
        found = re.fullmatch(r"/v3/payments/([^/]+)", path)
        if method == "GET" and found:
            with self._lock:
                payment = self.payments.get(found.group(1))
                if payment is None:
                    return self._error(404, "not_found",
                                       "Incorrect payment_id. Payment doesn't exist or access denied.", "payment_id")
                return 200, deepcopy(payment)
        if method == "POST" and path == "/v3/payments":
            if not key or len(key) > 64:
                return self._error(400, "invalid_request", "Idempotence key must be specified (at most 64 characters)",
                                   "Idempotence-Key")
            problem = self._check(body)
            if problem:
                return self._error(400, "invalid_request", *problem)
            canonical = json.dumps(body, sort_keys=True)
            with self._lock:
                if key in self._keys:
                    before, payment_id = self._keys[key]
                    if before != canonical:
                        return self._error(400, "invalid_request",
                                           "Idempotence key duplicated with another request body", "Idempotence-Key")
                    return 200, deepcopy(self.payments[payment_id])
                payment = self._new_payment(body)
                self._keys[key] = (canonical, payment["id"])
                return 200, deepcopy(payment)
        return self._error(404, "not_found", "Not found")

    @staticmethod
    def _check(body: Any) -> tuple[str, str] | None:
        if not isinstance(body, dict):
            return "Request body is not a JSON object", "body"
        amount = body.get("amount")
        if not isinstance(amount, dict) or not isinstance(amount.get("value"), str) \
                or not AMOUNT.match(amount["value"]) or float(amount["value"]) <= 0:
            return "Invalid amount value", "amount.value"
        if amount.get("currency") != "RUB":
            return "Invalid currency", "amount.currency"
        confirmation = body.get("confirmation")
        if not isinstance(confirmation, dict) or confirmation.get("type") != "redirect" \
                or not str(confirmation.get("return_url", "")).startswith(("http://", "https://")):
            return "Invalid confirmation", "confirmation"
        if len(body.get("description", "")) > 128:
            return "Description is longer than 128 characters", "description"
        metadata = body.get("metadata", {})
        if not isinstance(metadata, dict) or len(metadata) > 16 \
                or any(len(k) > 32 or not isinstance(v, str) or len(v) > 512 for k, v in metadata.items()):
            return "Invalid metadata", "metadata"
        return None
