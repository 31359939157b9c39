"""On a phone (375 px): /verify and its result fit the screen; the signature field takes the width
of the screen and offers the landscape orientation; a finger-drawn signature is accepted."""

from __future__ import annotations

import datetime as dt
import os

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.test_join_flow import draw_signature, request_and_get_link
from tests.factories import ORG_APPLICATION, MemberKey

PHONE = {"width": 375, "height": 740, "is_mobile": True, "has_touch": True}
CASE = {"inn": "7877893285", "email": "mobile-sign@example.org", "coop": "Потребительский кооператив «Карман»"}


def signed_pdf(data_dir) -> bytes:
    """A signed PDF sealed with the live server's own seal (rendered here, as the portal does)."""
    from portal.documents import render
    from portal.documents.seal import ensure_seal_identity, seal_pdf
    from portal.documents.templates import sample_context
    from tests.unit.test_render import sign_document
    from tests.unit.test_signing import scribble_png

    identity = ensure_seal_identity(data_dir, "ПК «ВОСХОД»")
    when = dt.datetime(2026, 12, 2, 0, 48, 30, 123456, tzinfo=dt.timezone.utc)
    document, record = sign_document("pd_consent", sample_context("individual"), os.urandom(32), scribble_png(), when)
    return seal_pdf(render.render_signed_pdf("pd_consent", document, None, [record], "http://x/verify"), identity)


def test_verify_page_and_result_fit_a_phone(live_server, new_page, tmp_path):
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(signed_pdf(live_server.data_dir))  # also makes the seal: «Проверка без портала» is shown
    page = new_page(**PHONE)
    page.goto(live_server.url + "/verify")
    expect(page.locator("#seal-sha256")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.set_input_files("#file", str(pdf))
    page.click("button:has-text('Проверить файл')")
    expect(page.locator("#verify-result h2")).to_have_text("Документ действителен")
    expect(page.locator("#verify-result")).to_contain_text("02.12.2026 03:48 МСК")
    shot(page, "verify-result-375")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    # Not a PDF: refused at the file field.
    not_pdf = tmp_path / "photo.pdf"
    not_pdf.write_bytes(b"\x89PNG\r\n\x1a\n not a pdf")
    page.set_input_files("#file", str(not_pdf))
    page.click("button:has-text('Проверить файл')")
    expect(page.locator("#err-file")).to_contain_text("не является PDF-документом")
    expect(page.locator("#verify-result")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert [e for e in page.errors if "status of 422" not in e] == []


def on_the_signing_page(live_server, new_page) -> tuple[object, MemberKey]:
    """A new member (registered and with the application filled in over HTTP) on /cabinet/sign, on a phone."""
    link = request_and_get_link(live_server, new_page, CASE)
    key = MemberKey()
    page = new_page(**PHONE)
    page.goto(link)
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    r = page.request.post(link, form={"email": CASE["email"], "public_key": key.public_b64,
                                      "key_proof": key.proof(CASE["email"]), "saved": "on", "_csrf_token": token})
    assert r.ok and r.url.endswith("/cabinet/application"), r.status
    data = {**ORG_APPLICATION, "full_name": CASE["coop"], "short_name": "ПК «Карман»", "inn": CASE["inn"],
            "email": CASE["email"], "_csrf_token": token}
    r = page.request.post(live_server.url + "/cabinet/application", form=data)
    assert r.ok and r.url.endswith("/cabinet/sign"), r.status
    page.goto(live_server.url + "/cabinet/sign")
    return page, key


def touch_stroke(page, points: list[tuple[float, float]]) -> None:
    """One finger stroke through points given as fractions of the canvas."""
    canvas = page.locator("[data-signature-pad] canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    pts = [{"x": box["x"] + fx * box["width"], "y": box["y"] + fy * box["height"]} for fx, fy in points]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [pts[0]]})
    for p in pts[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [p]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_signature_field_on_a_phone(live_server, new_page):
    page, key = on_the_signing_page(live_server, new_page)
    canvas = page.locator("[data-signature-pad] canvas")
    hint = page.locator(".signature-pad-rotate")

    # Upright: the width of the screen (3:1) and the hint to turn the phone.
    box = canvas.bounding_box()
    assert box["width"] >= 340 and box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert abs(box["width"] / box["height"] - 3) < 0.05
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Поверните телефон")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "sign-375")

    # Sideways: a larger field, no hint; on a desktop screen no hint either.
    page.set_viewport_size({"width": 740, "height": 375})
    expect(hint).to_be_hidden()
    assert canvas.bounding_box()["width"] > box["width"] + 200
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(hint).to_be_hidden()

    # Back upright: a scribbled-over blob is refused at the field, a finger-drawn signature is accepted.
    page.set_viewport_size({"width": 375, "height": 740})
    expect(hint).to_be_visible()
    touch_stroke(page, [(0.40 + 0.08 * (i % 2), 0.30 + 0.004 * i) for i in range(100)])
    page.click("button:has-text('Подписать')")
    expect(page.locator(".signature-pad-error")).to_contain_text("закрашенной фигурой")
    page.click("[data-action=clear]")
    draw_signature(page, touch=True)
    assert page.evaluate("SignaturePad.get('[data-signature-pad]').strokes().length") == 2
    seed = key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    page.fill("#key-paste", "-".join(seed[i:i + 4] for i in range(0, 64, 4)))
    page.click("button:has-text('Подписать')")
    page.wait_for_url("**/cabinet?signed=1")
    expect(page.locator(".documents li")).to_have_count(4)
    assert [e for e in page.errors if "status of 422" not in e] == []
