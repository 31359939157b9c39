"""The request layer of every page: HEAD, one charset, no public schema, anchored CSRF exclusion, input
cleaning, and malformed requests answered with 4xx in Russian, never 500."""

from __future__ import annotations

import pytest

from portal.connect.tables import ConnectRequest
from portal.request import strip_invisible
from portal.staff.service import create_staff
from tests.conftest import csrf_token, post_form
from tests.integration.test_connect import VALID


@pytest.fixture
async def staff_client(client):
    await create_staff("layer@voskhod.example", "layer password 1")
    r = await post_form(client, "/staff/login", {"email": "layer@voskhod.example", "password": "layer password 1"})
    assert r.status_code == 303
    return client


@pytest.mark.parametrize("path", ["/", "/connect", "/pricing", "/verify", "/login", "/healthz", "/static/portal.css"])
async def test_head_is_answered_wherever_get_is(client, path):
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_html_says_its_charset_once(client):
    assert (await client.get("/")).headers["content-type"] == "text/html; charset=utf-8"
    assert (await client.get("/no-such-page")).headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger", "/schema/openapi.json", "/schema/redoc"])
async def test_no_public_schema_of_the_routes(client, path):
    assert (await client.get(path)).status_code == 404


async def test_csrf_is_skipped_only_for_healthz_itself(client):
    """The old exclusion "/healthz" was a pattern: any path containing it skipped the CSRF check."""
    await client.get("/")
    r = await client.post("/recover/healthz", data={"public_key": "x"})
    assert r.status_code == 403 and "Доступ запрещён" in r.text


async def test_invisible_characters_are_stripped_from_every_form_field(client):
    name = "ПК\u202e «Рассвет»\x00\x07\u2066"
    r = await post_form(client, "/connect", {**VALID, "coop_name": name, "contact_name": "Иван\u200f Петров"})
    assert r.status_code == 303
    row = await ConnectRequest.select().first()
    assert row["coop_name"] == "ПК «Рассвет»" and row["contact_name"] == "Иван Петров"


async def test_a_nul_in_a_query_parameter_is_not_an_error(staff_client):
    r = await staff_client.get("/staff/connect-requests", params={"q": "Рас\x00свет", "status": "all"})
    assert r.status_code == 200


async def test_a_form_body_that_is_not_utf8_is_a_400(client):
    token = await csrf_token(client)
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            b'Content-Type: application/pdf\r\n\r\n%PDF-1.7\r\n'
            b'--B\r\nContent-Disposition: form-data; name="note"\r\n\r\n\xff\xfe\xfd\r\n--B--\r\n')
    r = await client.post("/verify", content=body, headers={"content-type": "multipart/form-data; boundary=B",
                                                             "x-csrftoken": token})
    assert r.status_code == 400 and "неверной кодировке" in r.text
    r = await client.post("/connect", content=b"coop_name=%FF%FE&_csrf_token=" + token.encode(),
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code in (400, 422) and r.status_code != 500


async def test_a_csrf_token_of_non_ascii_characters_is_refused_not_crashed(client):
    await client.get("/")
    r = await client.post("/connect", data={"_csrf_token": "токен"})
    assert r.status_code == 403 and "Доступ запрещён" in r.text
    r = await client.post("/connect", data={}, headers=[(b"x-csrftoken", "токен".encode())])
    assert r.status_code == 403 and "Доступ запрещён" in r.text


@pytest.mark.parametrize("path", ["/staff/applications/", "/staff/documents/", "/staff/connect-requests/"])
async def test_a_thirty_digit_id_in_the_path_is_a_400(staff_client, path):
    r = await staff_client.get(path + "9" * 30)
    assert r.status_code == 400 and "слишком большое число" in r.text


async def test_a_five_thousand_digit_number_in_the_calculator_is_a_field_error(client):
    r = await client.get("/pricing", params={"registrations": "9" * 5000, "packages": "60"})
    assert r.status_code == 422 and "Слишком много" in r.text
    r = await client.get("/pricing", params={"registrations": "0" * 5000 + "7", "packages": "60"})
    assert r.status_code == 200


async def test_nul_in_a_static_path_is_a_400(client):
    r = await client.get("/static/portal.css%00.html")
    assert r.status_code == 400 and "Некорректный запрос" in r.text


def test_strip_invisible_keeps_text_newlines_and_tabs():
    assert strip_invisible("а\tб\nв\r\nг") == "а\tб\nв\r\nг"
    assert strip_invisible("\x00\x1b[31mИНН\u202e 7707083893\u2069\ufeff") == "[31mИНН 7707083893"
