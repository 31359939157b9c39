"""E-mail texts are templates in portal/templates/mail/ with the operator's name from the settings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from portal.mail.render import TEMPLATES_DIR, render_mail
from portal.settings import OperatorRequisites, Settings

PORTAL_DIR = Path(__file__).resolve().parents[2] / "portal"
SETTINGS = Settings(base_url="https://portal.example.ru",
                    operator=dataclasses.replace(OperatorRequisites(), name_short="ПК «Заря»"))
TOKEN = "tok_" + "x" * 39
EXPIRES = dt.datetime(2026, 12, 9, 10, 5, tzinfo=dt.timezone.utc)  # 13:05 in Moscow
REQUEST = {"id": 17, "coop_name": "Кооператив «Рассвет» & Ко", "inn": "7707083893", "contact_name": "Мария",
           "email": "maria@example.org", "phone": "+79123456789", "domain": "xn--80aej5bgaj.xn--p1ai"}
CONTEXTS = {
    "mail/connect_received.txt": {"request_id": 17, "request": REQUEST},
    "mail/connect_staff_notice.txt": {"request_id": 17, "request": REQUEST},
    "mail/registration_link.txt": {"request": REQUEST, "token": TOKEN, "expires_at": EXPIRES},
    "mail/connect_rejected.txt": {"request": REQUEST, "reason": "Нет устава <в PDF> & \"подписи\""},
    "mail/recovery_link.txt": {"token": TOKEN, "expires_at": EXPIRES},
    "mail/admission_decided.txt": {"name": "ПО «Рассвет»", "number": "Р-2026-0001", "date": "02.12.2026",
                                   "cooperative": "ПК «Заря»", "cabinet_url": "https://portal.example.ru/cabinet",
                                   "title": "Решение Совета о приёме в пайщики"},
    "mail/admission_refused.txt": {"name": "ПО «Рассвет»", "reason": "Не состоит в Союзе «РУСЬ»",
                                   "cooperative": "ПК «Заря»", "invoice": "В-2026-000001",
                                   "refund": [{"title": "Вступительный взнос", "rub": "1 000,00 ₽"}],
                                   "refund_total": "1 000,00 ₽", "refund_words": "одна тысяча рублей 00 копеек"},
    "mail/fees_credited.txt": {"member_name": "ПО «Рассвет»", "number": "В-2026-000001", "total": "4 000,00 ₽",
                               "lines": [{"title": "Вступительный взнос", "amount": "1 000,00 ₽"}],
                               "paid": "4 000,00 ₽", "overpaid": "", "paid_at": EXPIRES},
    "mail/connection_signed_staff.txt": {"member": "ПО «Рассвет»", "domain": "рассвет.рф",
                                         "url": "https://portal.example.ru/staff/connections/3"},
    "mail/connection_approved.txt": {"name": "ПО «Рассвет»", "number": "ДП-2026-000003", "domain": "рассвет.рф",
                                     "hosting": "hosted", "url": "https://portal.example.ru/cabinet/connection"},
    "mail/site_ready.txt": {"name": "ПО «Рассвет»", "cooperative": "ПК «Рассвет»", "domain": "рассвет.рф",
                            "url": "http://рассвет.рф/"},
    "mail/connection_returned.txt": {"name": "ПО «Рассвет»", "reason": "Уточните описание <деятельности>",
                                     "url": "https://portal.example.ru/cabinet/connection"},
    "mail/cooperative_activated.txt": {
        "name": "Иванов Иван Иванович", "cooperative": "ПК «Рассвет»",
        "cooperative_full": "Потребительский кооператив «Рассвет»",
        "domain": "рассвет.рф", "url": "http://рассвет.рф/", "titles": ["Политика обработки персональных данных"],
        "council": [{"name": "Иванов Иван Иванович", "role": "Председатель совета"}], "council_member": True},
    "mail/cooperative_activated_staff.txt": {
        "cooperative": "ПК «Рассвет»", "cooperative_full": "Потребительский кооператив «Рассвет»",
        "domain": "рассвет.рф", "url": "http://рассвет.рф/", "titles": ["Политика обработки персональных данных"],
        "council": [{"name": "Иванов Иван Иванович", "role": "Председатель совета"}],
        "staff_url": "https://portal.example.ru/staff/connections"},
    "mail/council_invitation.txt": {
        "name": "Мария Петровна", "role": "председатель совета", "cooperative": "ПК «Рассвет»",
        "cooperative_full": "Потребительский кооператив «Рассвет»", "expires_at": EXPIRES,
        "url": f"http://rassvet.localhost/install/invite/{TOKEN}",
        "regulations": ("Положение о простой электронной подписи", "Пользовательское соглашение")},
}


def test_every_mail_template_is_covered_here():
    found = {f"mail/{p.name}" for p in (TEMPLATES_DIR / "mail").glob("*.txt")}
    assert found == set(CONTEXTS)


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_operator_name_comes_from_the_settings(name):
    subject, body = render_mail(SETTINGS, name, CONTEXTS[name])
    assert "ВОСХОД" not in subject + body
    assert subject and "\n" not in subject
    assert body.endswith("\n") and not body.endswith("\n\n") and not body.startswith("\n")


def test_registration_link_text():
    subject, body = render_mail(SETTINGS, "mail/registration_link.txt", CONTEXTS["mail/registration_link.txt"])
    assert subject == "Ссылка на регистрацию в ПК «Заря»"
    assert body == (
        "Здравствуйте, Мария!\n\n"
        "Заявка на подключение (Кооператив «Рассвет» & Ко, ИНН 7707083893) одобрена. Чтобы вступить в ПК «Заря» "
        "и подключиться к платформе, перейдите по ссылке:\n\n"
        f"https://portal.example.ru/join/{TOKEN}\n\n"
        "Ссылка действует 7 дней (до 09.12.2026 13:05 МСК) и только один раз. Не пересылайте её другим людям.\n\n"
        "С уважением,\nПК «Заря»\n"
    )


def test_recovery_link_text():
    subject, body = render_mail(SETTINGS, "mail/recovery_link.txt", CONTEXTS["mail/recovery_link.txt"])
    assert subject == "Восстановление ключа пайщика ПК «Заря»"
    assert f"\n\nhttps://portal.example.ru/recover/{TOKEN}\n\n" in body
    assert "до 09.12.2026 13:05 (МСК)" in body and body.endswith("\n\nПК «Заря»\n")


def test_connect_texts():
    subject, body = render_mail(SETTINGS, "mail/connect_received.txt", CONTEXTS["mail/connect_received.txt"])
    assert subject == "Заявка на подключение № 17 принята"
    assert "Сотрудник ПК «Заря» проверит данные" in body
    assert "https://portal.example.ru/docs/connection/" in body
    subject, body = render_mail(SETTINGS, "mail/connect_staff_notice.txt", CONTEXTS["mail/connect_staff_notice.txt"])
    assert subject == "Новая заявка на подключение № 17: Кооператив «Рассвет» & Ко"
    assert "Домен: рассвет.рф\n" in body and "https://portal.example.ru/staff/connect-requests/17" in body
    _, body = render_mail(SETTINGS, "mail/connect_staff_notice.txt",
                          {"request_id": 17, "request": {**REQUEST, "domain": ""}})
    assert "Домен: —\n" in body
    subject, body = render_mail(SETTINGS, "mail/connect_rejected.txt", CONTEXTS["mail/connect_rejected.txt"])
    assert subject == "Заявка на подключение № 17 отклонена"
    assert "Причина:\n\nНет устава <в PDF> & \"подписи\"\n\n" in body  # plain text: nothing escaped


def test_a_subject_is_one_line_whatever_the_data():
    subject, _ = render_mail(SETTINGS, "mail/connect_staff_notice.txt",
                             {"request_id": 1, "request": {**REQUEST, "coop_name": "Заря\r\nBcc: x@example.org"}})
    assert subject == "Новая заявка на подключение № 1: Заря Bcc: x@example.org"


def test_a_missing_variable_is_an_error_not_a_hole():
    with pytest.raises(UndefinedError):
        render_mail(SETTINGS, "mail/recovery_link.txt", {"token": TOKEN})


def test_mail_text_is_not_built_in_services():
    """Every e-mail goes through send_template: no enqueue() and no «С уважением» outside portal/mail/."""
    offenders = []
    for path in PORTAL_DIR.rglob("*.py"):
        if path.parent.name == "mail" or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"from portal\.mail(\.service)? import[^\n]*\benqueue\b|\bservice\.enqueue\(", text) \
                or "С уважением" in text:
            offenders.append(str(path.relative_to(PORTAL_DIR)))
    assert offenders == []
