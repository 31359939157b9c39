"""Factories for tests: application data, member keys, drawn signatures, a registered member."""

from __future__ import annotations

import io
import math
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from portal.documents.signing import b64encode

ORG_APPLICATION = {
    "applicant_type": "organization",
    "full_name": "Потребительский кооператив «Рассвет»",
    "short_name": "ПК «Рассвет»",
    "inn": "7707083893",
    "ogrn": "1027700132195",
    "kpp": "773601001",
    "legal_address": "117997, г. Москва, ул. Вавилова, д. 19",
    "actual_address": "117997, г. Москва, ул. Вавилова, д. 19",
    "phone": "+7 912 345-67-89",
    "email": "maria@example.org",
    "rep_surname": "Иванова",
    "rep_name": "Мария",
    "rep_patronymic": "Петровна",
    "rep_position": "председатель совета",
    "rep_basis": "charter",
    "rep_passport_series": "4510",
    "rep_passport_number": "123456",
    "rep_passport_issued_by": "ГУ МВД России по г. Москве",
    "rep_passport_issue_date": "2015-04-20",
    "rep_passport_division_code": "770-001",
    "rep_address": "125009, г. Москва, ул. Тверская, д. 7, кв. 12",
    "join_decision_body": "общее собрание пайщиков",
    "join_decision_date": "2025-11-20",
    "join_decision_number": "7",
    "bank_name": "ПАО Сбербанк",
    "bik": "044525225",
    "corr_account": "30101810400000000225",
    "settlement_account": "40702810938000000001",
    "union_member_confirmed": "on",
}


INDIVIDUAL_APPLICATION = {
    "applicant_type": "individual",
    "surname": "Кузнецов",
    "name": "Иван",
    "patronymic": "Сергеевич",
    "birth_date": "1985-03-14",
    "address": "170100, г. Тверь, ул. Советская, д. 10, кв. 4",
    "phone": "8 (900) 123-45-67",
    "email": "ivan@example.org",
    "passport_series": "2805",
    "passport_number": "654321",
    "passport_issued_by": "УМВД России по Тверской области",
    "passport_issue_date": "2005-04-02",
    "passport_division_code": "690-003",
}

ENTREPRENEUR_APPLICATION = {
    **INDIVIDUAL_APPLICATION,
    "applicant_type": "entrepreneur",
    "inn": "500100732259",
    "ogrnip": "304500116000157",
    "bank_name": "ПАО Сбербанк",
    "bik": "044525225",
    "corr_account": "30101810400000000225",
    "settlement_account": "40702810938000000001",
}


class MemberKey:
    """A member key as the browser holds it (the seed never goes to the server)."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.public_raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_b64 = b64encode(self.public_raw)

    def sign(self, message: str | bytes) -> str:
        return b64encode(self.private.sign(message.encode() if isinstance(message, str) else message))

    def proof(self, email: str) -> str:
        return self.sign(f"coopkey:v1:{email}:{self.public_b64}")


def signature_png(size: tuple[int, int] = (600, 200), seed: int = 1) -> bytes:
    """A hand-drawn-like scribble on a transparent background."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    w, h = size
    points = [(w * 0.1 + t * w * 0.008, h * 0.5 + math.sin(t / 3 + seed) * h * 0.25 + math.cos(t / 7) * h * 0.1)
              for t in range(100)]
    draw.line(points, fill=(20, 20, 60, 255), width=4, joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def form_value(html: str, name: str) -> str:
    m = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{re.escape(name)}"', html)
    assert m, f"no field {name}"
    return m.group(1)
