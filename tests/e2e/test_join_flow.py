"""J1 in a real browser, desktop (mouse) and phone (touch): e-mailed link → the ПЭП offer accepted by its own
request («Принять оферту») → member key → application → hand-drawn signature → the personal-data consent by its own action → the package signed →
signed PDFs, read back with poppler and checked with `portal verify`."""

from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot, staff_page, wait_for_mail, page_width
from tests.factories import ORG_APPLICATION

CASES = {
    "desktop": {"width": 1280, "height": 900, "touch": False, "inn": "7710140679", "email": "desk@example.org",
                "coop": "Потребительский кооператив «Десктоп»"},
    "phone": {"width": 375, "height": 800, "touch": True, "inn": "7704217370", "email": "phone@example.org",
              "coop": "Потребительский кооператив «Телефон»"},
}


def request_and_get_link(live_server, new_page, case) -> str:
    page = new_page()
    page.goto(live_server.url + "/connect")
    page.fill("#f-coop_name", case["coop"])
    page.fill("#f-inn", case["inn"])
    page.fill("#f-contact_name", "Иванова Мария Петровна")
    page.fill("#f-email", case["email"])
    page.fill("#f-phone", "+7 912 345-67-89")
    page.check("input[name=union_member][value=yes]")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    expect(page.locator("#connect-done")).to_contain_text("принята")
    staff = staff_page(live_server, new_page)
    staff.goto(live_server.url + "/staff/connect-requests?q=" + case["inn"])
    staff.click("#results a")
    staff.click("text=Отправить ссылку на регистрацию")
    expect(staff.locator(".notice")).to_contain_text("отправлена")
    mail = wait_for_mail(live_server.smtp, case["email"], "Ссылка на регистрацию")
    return re.search(r"http://127\.0\.0\.1:\d+/join/[A-Za-z0-9_-]+", mail.get_content()).group(0)


def draw_signature(page, touch: bool) -> None:
    canvas = page.locator("[data-signature-pad] canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    strokes = [
        [(0.10 + i * 0.02, 0.55 + 0.25 * ((-1) ** i) * (i % 3) / 2) for i in range(16)],
        [(0.50 + i * 0.025, 0.40 + 0.05 * i - 0.004 * i * i) for i in range(14)],
    ]
    if touch:
        cdp = page.context.new_cdp_session(page)
        for stroke in strokes:
            pts = [{"x": x0 + fx * w, "y": y0 + fy * h} for fx, fy in stroke]
            cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [pts[0]]})
            for p in pts[1:]:
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [p]})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    else:
        for stroke in strokes:
            page.mouse.move(x0 + stroke[0][0] * w, y0 + stroke[0][1] * h)
            page.mouse.down()
            for fx, fy in stroke[1:]:
                page.mouse.move(x0 + fx * w, y0 + fy * h, steps=3)
            page.mouse.up()


def give_consent(page) -> None:
    """«Дать согласие» on /cabinet/sign (the signature drawn, the key at hand): first without ticking the box —
    refused at the box —, then ticked. The page stays, the drawing too."""
    page.locator("#consent").scroll_into_view_if_needed()
    expect(page.locator("#consent-box")).not_to_be_checked()
    page.click("button:has-text('Дать согласие')")
    expect(page.locator("#err-consent")).to_contain_text("Отметьте")
    page.check("#consent-box")
    page.click("button:has-text('Дать согласие')")
    expect(page.locator("#consent-given")).to_contain_text("Согласие дано", timeout=60_000)  # a signed, sealed PDF
    expect(page.locator("#sign-steps li").nth(1)).to_have_class("done")
    assert page.url.split("#")[0].endswith("/cabinet/sign")


@pytest.mark.parametrize("case_name", list(CASES))
def test_from_emailed_link_to_signed_documents(live_server, new_page, tmp_path, case_name):
    case = CASES[case_name]
    link = request_and_get_link(live_server, new_page, case)
    page = new_page(width=case["width"], height=case["height"], is_mobile=case["touch"], has_touch=case["touch"],
                    accept_downloads=True)
    page.goto(link)
    expect(page.locator("h1")).to_contain_text("Регистрация в ПК «ВОСХОД»")

    # The ПЭП offer comes first: readable in full; until the server has recorded its acceptance no key can be made.
    create = page.locator("[data-action=create-key]")
    expect(page.locator("#offer iframe.doc-frame")).to_be_visible()
    offer_frame = page.frame_locator("#offer iframe.doc-frame")
    expect(offer_frame.locator("body")).to_contain_text("простой электронной подписи")
    expect(page.locator("#pep-offer")).not_to_be_checked()
    expect(create).to_be_disabled()
    expect(page.locator("#key-gate-hint")).to_be_visible()
    create.click(force=True)  # a disabled button does nothing
    expect(page.locator("[data-key-panel]")).to_be_hidden()
    assert page.input_value("input[name=public_key]") == ""
    # Posting the registration without the offer accepted (the browser's own checks bypassed) is refused at the
    # field, the e-mail kept.
    page.fill("#email", case["email"])
    page.evaluate("document.querySelector('#join-form').submit()")
    expect(page.locator("#err-pep_offer")).to_contain_text("Примите оферту")
    assert page.input_value("#email") == case["email"]
    expect(create).to_be_disabled()
    shot(page, f"join-offer-{case_name}")
    # Ticking the box is not the acceptance: the key still waits.
    page.check("#pep-offer")
    expect(create).to_be_disabled()
    # «Принять оферту» with the box unticked: refused at the box (the block only is swapped, the e-mail stays).
    page.uncheck("#pep-offer")
    page.click("#accept-offer")
    expect(page.locator("#err-pep_offer")).to_contain_text("Отметьте")
    expect(create).to_be_disabled()
    assert page.input_value("#email") == case["email"]
    # Accepted: the server records it and answers with the block, the key button enabled.
    page.check("#pep-offer")
    page.click("#accept-offer")
    expect(page.locator("#offer-accepted")).to_contain_text("Оферта принята")
    expect(page.locator("#offer-accepted")).to_be_focused()
    expect(create).to_be_enabled()
    expect(page.locator("#key-gate-hint")).to_have_count(0)
    expect(page.locator("#pep-offer")).to_have_count(0)
    assert page.url.split("#")[0] == link and page.input_value("#email") == case["email"]
    shot(page, f"join-offer-accepted-{case_name}")

    # The member key: made in the browser, shown once, downloadable as a file.
    page.click("text=Создать ключ пайщика")
    key_text = page.locator("#key-output").input_value()
    expect(page.locator("[data-action=create-key]")).to_be_hidden()  # one key, shown once
    shot(page, f"join-{case_name}")
    assert re.fullmatch(r"([0-9a-f]{4}-){15}[0-9a-f]{4}", key_text)
    with page.expect_download() as dl:
        page.click("text=Скачать файл ключа")
    key_file = tmp_path / "key.txt"
    dl.value.save_as(key_file)
    assert key_text in key_file.read_text()
    page.check("input[name=saved]")
    page.click("text=Продолжить: заявление")
    page.wait_for_url("**/cabinet/application")

    # The application: an inline error on leaving a field, then the real values.
    page.fill("#f-inn", "7707083894")
    page.locator("#f-ogrn").focus()
    expect(page.locator("#err-inn")).to_contain_text("контрольной суммой")
    data = {**ORG_APPLICATION, "full_name": case["coop"], "short_name": case["coop"].replace("Потребительский кооператив", "ПК"),
            "inn": case["inn"], "email": case["email"]}
    for name, value in data.items():
        if name in ("applicant_type", "rep_basis"):
            continue
        if name == "union_member_confirmed":
            page.check("#f-union_member_confirmed")
        else:
            page.fill(f"#f-{name}", value)
    page.locator("#f-full_name").focus()
    expect(page.locator("#err-inn")).to_have_count(0)
    page.wait_for_load_state("networkidle")  # the inline checks have saved the draft
    # The draft is on the server: a reload keeps what was typed.
    page.reload()
    assert page.input_value("#f-settlement_account") == ORG_APPLICATION["settlement_account"]
    shot(page, f"application-{case_name}")
    page.click("text=Сохранить и перейти к подписанию")
    page.wait_for_url("**/cabinet/sign", wait_until="domcontentloaded")

    # The signing screen: the consent and the two documents of the package readable, the canvas refuses a
    # blank signature.
    expect(page.locator("iframe.doc-frame")).to_have_count(3)
    expect(page.locator("#consent iframe.doc-frame")).to_have_count(1)
    page.click("button:has-text('Подписать')")
    expect(page.locator(".signature-pad-error")).to_contain_text("Подпись не нарисована")
    draw_signature(page, case["touch"])
    shot(page, f"sign-{case_name}")
    # The package cannot be signed before the consent.
    page.click("button:has-text('Подписать')")
    expect(page.locator("#sign-form [data-sign-error]")).to_contain_text("Сначала дайте согласие")
    assert page.url.endswith("/cabinet/sign")
    give_consent(page)
    shot(page, f"sign-consent-given-{case_name}")
    # The same drawing signs the package: nothing to draw again.
    assert page.evaluate("window.PortalSignature.get('[data-signature-pad]').isEmpty()") is False
    page.click("button:has-text('Подписать')")
    page.wait_for_url("**/cabinet?signed=1")
    # «Мои документы»: the accepted offer, the consent, the application, the user agreement.
    expect(page.locator(".documents li")).to_have_count(5)  # + the fees invoice issued at signing
    expect(page.locator(".documents li").first).to_contain_text("простой электронной подписи")
    expect(page.locator(".documents")).to_contain_text("Согласие на обработку персональных данных")
    shot(page, f"cabinet-{case_name}")
    assert page_width(page) <= case["width"]

    with page.expect_download() as dl:
        page.click("text=Заявление о вступлении")
    pdf = tmp_path / "application.pdf"
    dl.value.save_as(pdf)

    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert case["coop"].split("«")[1].rstrip("»") in text and case["inn"] in text
    attachments = subprocess.run(["pdfdetach", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "document.json" in attachments and "signatures.json" in attachments
    ok = live_server.portal("verify", str(pdf))
    assert ok.returncode == 0, ok.stderr
    assert "ДЕЙСТВИТЕЛЕН" in ok.stdout
    content = bytearray(pdf.read_bytes())
    content[len(content) // 2] ^= 0x01
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(bytes(content))
    bad = live_server.portal("verify", str(broken))
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1 and "НЕДЕЙСТВИТЕЛЕН" in bad.stderr
    assert [e for e in page.errors if "status of 422" not in e] == []

    # Logging in again: with the key kept in this browser, then — after forgetting it — with the key itself.
    page.click("button:has-text('Выйти')")
    page.wait_for_url("**/login")
    page.fill("#email", case["email"])
    expect(page.locator("[data-key-status]")).to_contain_text("сохранён в браузере")
    page.click("form button[type=submit]")
    page.wait_for_url("**/cabinet")
    page.click("button:has-text('Забыть ключ в этом браузере')")
    page.click("button:has-text('Выйти')")
    page.wait_for_url("**/login")
    page.fill("#email", case["email"])
    expect(page.locator("[data-key-status]")).to_contain_text("нет сохранённого ключа")
    page.click("form button[type=submit]")
    expect(page.locator("[data-key-error]")).to_contain_text("Укажите ключ пайщика")
    if case["touch"]:
        page.fill("#key-paste", "0000" + key_text[4:])  # a wrong key is refused by the server
        page.click("form button[type=submit]")
        expect(page.locator("[data-key-error]")).to_contain_text("не подходит")
        page.fill("#email", case["email"])
        page.fill("#key-paste", key_text)
    else:
        page.set_input_files("#key-file", str(key_file))
    page.click("form button[type=submit]")
    page.wait_for_url("**/cabinet")
    expect(page.locator("h1")).to_contain_text("Кабинет пайщика")
