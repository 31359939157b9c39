"""On a phone (375 px): /verify and its result fit the screen; the signature field takes the width
of the screen and offers the landscape orientation; a finger-drawn signature is accepted. The
signature field's checks (blank, straight line, filled shape), undo and clear, with a finger, a pen
and a mouse; the drawing survives resizing and is exported as a PNG of pixel chunks only."""

from __future__ import annotations

import datetime as dt
import os
import re
import time

import pytest

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from playwright.sync_api import expect

from portal.documents.signing import SignatureImageError, validate_signature_png

from tests.e2e.conftest import shot, page_width
from tests.e2e.test_join_flow import draw_signature, give_consent, request_and_get_link
from tests.factories import ORG_APPLICATION, MemberKey

PHONE = {"width": 375, "height": 740, "is_mobile": True, "has_touch": True}
CASE = {"inn": "7877893285", "email": "mobile-sign@example.org", "coop": "Потребительский кооператив «Карман»"}
DESKTOP = {"width": 1280, "height": 900}
DESKTOP_CASE = {"inn": "7734123457", "email": "pad-checks@example.org", "coop": "Потребительский кооператив «Перо»"}
PAD = "PortalSignature.get('[data-signature-pad]')"


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
    assert page_width(page) <= 375

    page.set_input_files("#file", str(pdf))
    page.click("button:has-text('Проверить файл')")
    expect(page.locator("#verify-result h2")).to_have_text("Документ действителен")
    expect(page.locator("#verify-result")).to_contain_text("02.12.2026 03:48 МСК")
    shot(page, "verify-result-375")
    assert page_width(page) <= 375

    # Not a PDF: refused at the file field.
    not_pdf = tmp_path / "photo.pdf"
    not_pdf.write_bytes(b"\x89PNG\r\n\x1a\n not a pdf")
    page.set_input_files("#file", str(not_pdf))
    page.click("button:has-text('Проверить файл')")
    expect(page.locator("#err-file")).to_contain_text("не является PDF-документом")
    expect(page.locator("#verify-result")).to_have_count(0)
    assert page_width(page) <= 375
    assert [e for e in page.errors if "status of 422" not in e] == []


def on_the_signing_page(live_server, new_page, case=CASE, device=PHONE) -> tuple[object, MemberKey]:
    """A new member (registered and with the application filled in over HTTP) on /cabinet/sign."""
    link = request_and_get_link(live_server, new_page, case)
    key = MemberKey()
    page = new_page(**device)
    page.goto(link)
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    # The ПЭП offer accepted by its own request first (as «Принять оферту» posts it), then the key registered.
    offer = {"pep_offer": "on", "_csrf_token": token}
    for name in ("offer_sha256", "offer_context_sha256"):
        offer[name] = page.locator(f"input[name={name}]").get_attribute("value")
    r = page.request.post(link + "/offer", form=offer)
    assert r.ok and r.url.split("#")[0] == link, r.status
    form = {"email": case["email"], "public_key": key.public_b64, "key_proof": key.proof(case["email"]),
            "saved": "on", "_csrf_token": token}
    r = page.request.post(link, form=form)
    assert r.ok and r.url.endswith("/cabinet/application"), r.status
    short_name = case["coop"].replace("Потребительский кооператив", "ПК")
    data = {**ORG_APPLICATION, "full_name": case["coop"], "short_name": short_name, "inn": case["inn"],
            "email": case["email"], "_csrf_token": token}
    r = page.request.post(live_server.url + "/cabinet/application", form=data)
    assert r.ok and r.url.endswith("/cabinet/sign"), r.status
    page.goto(live_server.url + "/cabinet/sign")
    return page, key


def sign_with(page, key: MemberKey) -> None:
    """The key pasted, the personal-data consent given, then the package signed, with the drawing on the page."""
    seed = key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    page.fill("#key-paste", "-".join(seed[i:i + 4] for i in range(0, 64, 4)))
    give_consent(page)
    page.click("button:has-text('Подписать')")
    page.wait_for_url("**/cabinet?signed=1")


def on_canvas(page, points: list[tuple[float, float]]) -> list[dict]:
    """Points given as fractions of the canvas, in page px."""
    canvas = page.locator("[data-signature-pad] canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    return [{"x": box["x"] + fx * box["width"], "y": box["y"] + fy * box["height"]} for fx, fy in points]


def touch_stroke(page, points: list[tuple[float, float]]) -> None:
    """One finger stroke through points given as fractions of the canvas."""
    pts = on_canvas(page, points)
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
    assert page_width(page) <= 375
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
    assert page.evaluate(f"{PAD}.strokes().length") == 2

    # A third stroke, undone; turning the phone keeps the drawing (same place in the field).
    touch_stroke(page, [(0.2, 0.2), (0.25, 0.3), (0.3, 0.2)])
    assert page.evaluate(f"{PAD}.strokes().length") == 3
    page.click("[data-action=undo]")  # (a tap: a click, or a long press when the machine is busy)
    drawn = page.evaluate(f"{PAD}.strokes()")
    assert len(drawn) == 2
    width = canvas.evaluate("c => c.width")
    for size in ({"width": 740, "height": 375}, {"width": 375, "height": 740}):
        page.set_viewport_size(size)
        wait_until(page, f"document.querySelector('[data-signature-pad] canvas').width !== {width}")
        width = canvas.evaluate("c => c.width")
        assert same_strokes(page.evaluate(f"{PAD}.strokes()"), drawn)
        assert ink_on_screen(page) > 200
    assert_server_accepts(page)
    sign_with(page, key)
    expect(page.locator(".documents li")).to_have_count(5)  # + the fees invoice issued at signing
    assert [e for e in page.errors if "status of 422" not in e] == []


def mouse_stroke(page, points: list[tuple[float, float]]) -> None:
    pts = on_canvas(page, points)
    page.mouse.move(pts[0]["x"], pts[0]["y"])
    page.mouse.down()
    for p in pts[1:]:
        page.mouse.move(p["x"], p["y"], steps=4)
    page.mouse.up()


def pen_stroke(page, points: list[tuple[float, float]]) -> None:
    """One stylus stroke (pointer events with pointerType "pen")."""
    pts = on_canvas(page, points)
    cdp = page.context.new_cdp_session(page)
    pen = {"pointerType": "pen", "force": 0.5}
    cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", **pts[0], **pen})
    cdp.send("Input.dispatchMouseEvent", {"type": "mousePressed", **pts[0], **pen, "button": "left", "buttons": 1,
                                          "clickCount": 1})
    for p in pts[1:]:
        cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", **p, **pen, "button": "left", "buttons": 1})
    cdp.send("Input.dispatchMouseEvent", {"type": "mouseReleased", **pts[-1], **pen, "button": "left", "buttons": 0,
                                          "clickCount": 1})


SIGNATURE = [  # two strokes, as fractions of the field
    [(0.10 + i * 0.02, 0.55 + 0.25 * ((-1) ** i) * (i % 3) / 2) for i in range(16)],
    [(0.50 + i * 0.025, 0.40 + 0.05 * i - 0.004 * i * i) for i in range(14)],
]
STRAIGHT_LINE = [(0.15 + 0.05 * i, 0.50 + 0.002 * i) for i in range(15)]


def wait_until(page, expression: str, timeout: float = 10) -> None:
    """Poll ``expression`` until it is true (page.wait_for_function would need 'unsafe-eval' under the CSP)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(50)


def same_strokes(a: list, b: list, tolerance: float = 0.5) -> bool:
    """The same strokes in the 600×200 logical space, within ``tolerance`` logical px."""
    return [len(s) for s in a] == [len(s) for s in b] and all(
        abs(p["x"] - q["x"]) <= tolerance and abs(p["y"] - q["y"]) <= tolerance
        for s, t in zip(a, b) for p, q in zip(s, t))


def ink_on_screen(page) -> int:
    """Painted pixels on the canvas as it is displayed."""
    return page.locator("[data-signature-pad] canvas").evaluate(
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((v, i) => i % 4 === 3 && v).length")


def exported_png(page) -> bytes:
    return bytes(page.evaluate(f"async () => Array.from(new Uint8Array(await (await {PAD}.toPNGBlob()).arrayBuffer()))"))


def assert_server_accepts(page) -> None:
    """The pad's PNG: 1200×400, only the pixel chunks, accepted by the server's own check."""
    png = exported_png(page)
    assert png_chunks(png) <= {b"IHDR", b"PLTE", b"IDAT", b"IEND"}
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1200, 400)
    validate_signature_png(png)


def png_chunks(png: bytes) -> set[bytes]:
    kinds, pos = set(), 8
    while pos < len(png):
        kinds.add(png[pos + 4:pos + 8])
        pos += 12 + int.from_bytes(png[pos:pos + 4], "big")
    return kinds


def refusal(page) -> str:
    """Press «Подписать»; the message under the field."""
    page.click("button:has-text('Подписать')")
    error = page.locator(".signature-pad-error")
    expect(error).to_be_visible()
    return error.inner_text()


def test_signature_checks_with_mouse_and_pen(live_server, new_page):
    page, key = on_the_signing_page(live_server, new_page, DESKTOP_CASE, DESKTOP)
    page.evaluate("""() => {
        window.changes = [];
        document.querySelector('[data-signature-pad]').addEventListener('signature:change',
            e => window.changes.push([e.detail.reason, e.detail.strokes, e.detail.empty]));
        window.pointerTypes = new Set();
        document.querySelector('[data-signature-pad] canvas').addEventListener('pointerdown',
            e => window.pointerTypes.add(e.pointerType));
    }""")
    messages = page.evaluate("PortalSignature.messages")
    pad = page.locator("[data-signature-pad]")

    # Blank: refused at the field, and by the server with the same words.
    assert refusal(page) == messages["blank"]
    expect(pad).to_have_class(re.compile(r"\bis-invalid\b"))

    # A single straight line (mouse): refused here, and the server refuses the same image.
    mouse_stroke(page, STRAIGHT_LINE)
    expect(page.locator(".signature-pad-error")).to_be_hidden()  # drawing hides the message
    assert refusal(page) == messages["line"]
    with pytest.raises(SignatureImageError, match="прямой линией"):
        validate_signature_png(exported_png(page))

    # Undo removes the last stroke only: a second stroke undone leaves the straight line.
    mouse_stroke(page, SIGNATURE[0])
    assert page.evaluate(f"{PAD}.strokes().length") == 2
    page.click("[data-action=undo]")
    assert page.evaluate(f"{PAD}.strokes().length") == 1
    assert refusal(page) == messages["line"]

    # Clear removes everything: blank again.
    page.click("[data-action=clear]")
    assert page.evaluate(f"{PAD}.isEmpty()") is True
    assert ink_on_screen(page) == 0
    expect(pad).to_have_class(re.compile(r"\bis-empty\b"))
    assert refusal(page) == messages["blank"]
    page.click("[data-action=undo]")  # nothing to undo: no change, no error
    assert page.evaluate("changes") == [["stroke", 1, False], ["stroke", 2, False], ["undo", 1, False],
                                        ["clear", 0, True]]

    # A pen signature passes here and on the server; a narrower window, then a sharper screen (the window
    # moved to another display: headless Chromium reports a new devicePixelRatio only with a new size),
    # keep the drawing.
    for stroke in SIGNATURE:
        pen_stroke(page, stroke)
    assert page.evaluate("[...pointerTypes].sort()") == ["mouse", "pen"]
    assert page.evaluate(f"{PAD}.validate()") is None
    drawn = page.evaluate(f"{PAD}.strokes()")
    assert len(drawn) == 2
    page.set_viewport_size({"width": 500, "height": 900})
    wait_until(page, "document.querySelector('[data-signature-pad] canvas').width < 600")
    assert same_strokes(page.evaluate(f"{PAD}.strokes()"), drawn)
    assert ink_on_screen(page) > 200
    page.context.new_cdp_session(page).send("Emulation.setDeviceMetricsOverride", {
        "width": 480, "height": 900, "deviceScaleFactor": 2, "mobile": False})
    wait_until(page, "(c => c.width === Math.round(c.getBoundingClientRect().width * 2))"
                     "(document.querySelector('[data-signature-pad] canvas'))")
    assert same_strokes(page.evaluate(f"{PAD}.strokes()"), drawn)
    assert ink_on_screen(page) > 800  # the same strokes on four times the pixels
    assert_server_accepts(page)
    sign_with(page, key)
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_bare_markup_is_completed_and_a_missing_library_is_said(new_page, cdn_assets):
    """For other pages (the council's signing page): a bare <div data-signature-pad> gets its canvas, buttons
    and error line; without the library (the CDN blocked, a wrong hash) the field says so instead of drawing."""
    from pathlib import Path

    from portal.web import SIGNATURE_PAD_URL

    wrapper = Path(__file__).parents[2] / "portal" / "static" / "signature-pad.js"
    for with_library in (True, False):
        page = new_page(width=800, height=600)
        page.set_content('<div style="width:600px"><div class="signature-pad" data-signature-pad></div></div>')
        if with_library:
            page.add_script_tag(content=cdn_assets[SIGNATURE_PAD_URL].decode())
        page.add_script_tag(path=str(wrapper))
        parts = page.evaluate("""() => {
            const pad = PortalSignature.get('[data-signature-pad]'), root = pad.root;
            return {canvas: root.querySelectorAll('.signature-pad-surface > canvas').length,
                    buttons: [...root.querySelectorAll('button')].map(b => [b.type, b.dataset.action, b.textContent]),
                    described: root.querySelector('canvas').getAttribute('aria-describedby')
                               === root.querySelector('.signature-pad-error').id,
                    same: PortalSignature.get(root.querySelector('canvas')) === pad,
                    error: root.querySelector('.signature-pad-error').textContent,
                    validate: pad.validate()};
        }""")
        messages = page.evaluate("PortalSignature.messages")
        assert parts["canvas"] == 1 and parts["described"] and parts["same"]
        assert parts["buttons"] == [["button", "undo", "Отменить штрих"], ["button", "clear", "Очистить"]]
        if with_library:
            assert parts["error"] == "" and parts["validate"] == messages["blank"]
            mouse_stroke(page, SIGNATURE[0])
            mouse_stroke(page, SIGNATURE[1])
            assert page.evaluate(f"{PAD}.validate()") is None
            assert_server_accepts(page)
        else:
            assert parts["error"] == parts["validate"] == messages["unavailable"]
        assert page.errors == []
