"""Pieces of the operator's API that need no database: the token's form, the cabinet's docker command, and how a
self-hosted instance reads the operator's answers (from a real local HTTP server)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shlex
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.connection import api
from portal.connection.instance import OperatorSyncError, cooperative_values, fetch_connection
from portal.settings import load_settings
from tests.support.ports import free_port


def test_token_hash_is_the_sha256_of_the_token():
    assert api.token_hash("vsk_abc") == hashlib.sha256(b"vsk_abc").hexdigest()
    assert len(api.token_hash("x")) == 64


def test_the_docker_command_starts_the_cooperatives_instance(tmp_path):
    settings = load_settings({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_BASE_URL": "https://voskhod.coop/"})
    token = "vsk_" + "A-b_" * 10
    command = api.docker_command(settings, "xn----7sbgm0ayaiblao.xn--p1ai", token)
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:2] == ["docker", "run"] and words[-1] == api.IMAGE
    env = dict(w.split("=", 1) for w in words if "=" in w and w.startswith("PORTAL_"))
    assert env == {"PORTAL_SECRET_KEY": "впишите-сюда-случайный-секрет", "PORTAL_OPERATOR_URL": "https://voskhod.coop",
                   "PORTAL_OPERATOR_TOKEN": token, "PORTAL_BASE_URL": "https://xn----7sbgm0ayaiblao.xn--p1ai"}
    assert "8000:8000" in words and "portal-data:/data" in words  # the image's port and data dir (Dockerfile)


def test_a_cooperative_row_from_the_operators_answer(tmp_path):
    settings = load_settings({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_BASE_URL": "https://coop.example.ru"})
    values = cooperative_values(ANSWER, settings)
    assert values["name_short"] == "ПК «Рассвет»" and values["address"] == "117997, г. Москва, ул. Вавилова, д. 19"
    assert (values["fee_entrance_org"], values["fee_share_org"], values["fee_entrance_ind"],
            values["fee_share_ind"]) == (150000, 200050, 10000, 30000)
    assert values["site"] == "https://coop.example.ru" and values["description"] == ANSWER["description"]
    assert "domain" not in values and "status" not in values and "is_operator" not in values  # the instance's own


ANSWER = {
    "domain": "coop.localhost", "domain_unicode": "coop.localhost", "status": "signed", "hosting": "self",
    "description": "Закупаем молоко у фермеров.",
    "cooperative": {"name_full": "Потребительский кооператив «Рассвет»", "name_short": "ПК «Рассвет»",
                    "inn": "7707083893", "ogrn": "1027700132195", "kpp": "773601001",
                    "legal_address": "117997, г. Москва, ул. Вавилова, д. 19", "actual_address": "то же",
                    "phone": "+79123456789", "email": "coop@example.org", "bank_name": "ПАО Сбербанк",
                    "bik": "044525225", "corr_account": "30101810400000000225",
                    "settlement_account": "40702810938000000001"},
    "fees": {"entrance_org": 150000, "share_org": 200050, "entrance_ind": 10000, "share_ind": 30000},
}


class Operator:
    """A local HTTP server that answers every request with one status and body, and records what it was asked."""

    def __init__(self, status: int, body: object):
        self.status, self.body, self.requests = status, body, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append((self.path, self.headers.get("Authorization")))
                data = outer.body if isinstance(outer.body, bytes) else json.dumps(outer.body).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _settings(tmp_path, operator_url: str, token: str = "vsk_token", host: str = "coop.localhost"):
    return load_settings({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_BASE_URL": f"http://{host}:8000",
                          "PORTAL_OPERATOR_URL": operator_url, "PORTAL_OPERATOR_TOKEN": token})


def test_the_instance_asks_for_its_own_host_with_the_token(tmp_path):
    operator = Operator(200, ANSWER)
    try:
        info = asyncio.run(fetch_connection(_settings(tmp_path, operator.url)))
    finally:
        operator.close()
    assert info == ANSWER
    assert operator.requests == [("/api/v1/connections/coop.localhost", "Bearer vsk_token")]


@pytest.mark.parametrize("status, body, message, refused", [
    (401, {"detail": "Токен API не действует"}, "Оператор не принял токен API (PORTAL_OPERATOR_TOKEN): "
                                                "Токен API не действует", True),
    (404, {"detail": "Подключения нет"}, "Оператор не знает подключения с доменом coop.localhost для этого "
                                         "токена: Подключения нет", True),
    (403, b"<html>forbidden</html>", "Оператор отказал (403)", True),
    (502, b"<html>bad gateway</html>", "Оператор ответил 502", False),
    (200, b"not json", "Оператор ответил 200", False),
    (200, {**ANSWER, "domain": "other.localhost"}, "Оператор вернул подключение другого домена", True),
])
def test_the_operators_refusals_are_said_in_russian(tmp_path, status, body, message, refused):
    operator = Operator(status, body)
    try:
        with pytest.raises(OperatorSyncError) as caught:
            asyncio.run(fetch_connection(_settings(tmp_path, operator.url)))
    finally:
        operator.close()
    assert message in str(caught.value)
    assert caught.value.refused is refused


def test_an_unreachable_operator_or_a_missing_token(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(OperatorSyncError, match="Оператор недоступен") as caught:
        asyncio.run(fetch_connection(_settings(tmp_path, closed)))
    assert not caught.value.refused
    with pytest.raises(OperatorSyncError, match="PORTAL_OPERATOR_TOKEN не задан"):
        asyncio.run(fetch_connection(_settings(tmp_path, closed, token="")))


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "http://localhost", "https://[::1]:8443",
                                      "http://10.0.0.5"])
def test_an_instance_needs_its_domain_in_the_base_url(tmp_path, base_url):
    settings = load_settings({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_BASE_URL": base_url,
                              "PORTAL_OPERATOR_URL": "http://127.0.0.1:9", "PORTAL_OPERATOR_TOKEN": "vsk_x"})
    with pytest.raises(OperatorSyncError, match="укажите адрес сайта кооператива с его доменом") as caught:
        asyncio.run(fetch_connection(settings))
    assert caught.value.refused


def test_a_cyrillic_host_is_asked_for_in_punycode(tmp_path):
    operator = Operator(404, {"detail": "нет"})
    try:
        with pytest.raises(OperatorSyncError):
            asyncio.run(fetch_connection(_settings(tmp_path, operator.url, host="кооп.рф")))
    finally:
        operator.close()
    assert operator.requests[0][0] == "/api/v1/connections/xn--j1aiae.xn--p1ai"
