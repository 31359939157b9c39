"""Pure checks of what people type: ИНН, phone, e-mail, domain. Errors are Russian sentences."""

from __future__ import annotations

import re
import unicodedata

import idna
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from stdnum.ru import inn as stdnum_inn


class FieldError(ValueError):
    """A value that cannot be accepted; the message is shown at the field."""


def digits(value: str) -> str:
    return re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", value or ""))


def clean_inn(value: str, length: int | None = None) -> str:
    """ИНН by python-stdnum: 10 digits for organizations, 12 for individuals and ИП."""
    raw = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", value or ""))
    if not raw:
        raise FieldError("Укажите ИНН.")
    if not re.fullmatch(r"[0-9]+", raw):
        raise FieldError("ИНН состоит только из цифр.")
    if length and len(raw) != length:
        kind = "организации" if length == 10 else "физического лица или ИП"
        raise FieldError(f"ИНН {kind} состоит из {length} цифр, а введено {len(raw)}.")
    try:
        return stdnum_inn.validate(raw)
    except InvalidChecksum:
        raise FieldError("ИНН с такой контрольной суммой не существует — проверьте цифры.")
    except (InvalidLength, InvalidFormat, InvalidComponent, ValidationError):
        raise FieldError("ИНН состоит из 10 цифр (организация) или 12 цифр (физическое лицо, ИП).")


def clean_phone(value: str) -> str:
    """A Russian phone number, normalised to +7XXXXXXXXXX."""
    d = digits(value)
    if not d:
        raise FieldError("Укажите телефон.")
    if len(d) == 11 and d[0] in "78":
        d = d[1:]
    if len(d) != 10:
        raise FieldError("Телефон — 10 цифр после +7, например +7 912 345-67-89.")
    return "+7" + d


_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def clean_email(value: str) -> str:
    email = (value or "").strip()
    if not email:
        raise FieldError("Укажите адрес электронной почты.")
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise FieldError("Адрес почты выглядит неверно — нужен вид name@example.ru.")
    local, _, domain = email.rpartition("@")
    domain = domain.rstrip(".")
    try:
        domain = idna.encode(domain, uts46=True).decode()
    except idna.IDNAError:
        raise FieldError("В адресе почты неверный домен.")
    return f"{local}@{domain.lower()}"


_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def clean_domain(value: str) -> str:
    """A domain or subdomain; Cyrillic accepted and returned in punycode (xn--…)."""
    d = (value or "").strip().lower()
    d = re.sub(r"^[a-z]+://", "", d).split("/", 1)[0].rstrip(".")
    if not d:
        raise FieldError("Укажите домен.")
    if " " in d or "_" in d:
        raise FieldError("В домене не бывает пробелов и подчёркиваний.")
    try:
        ascii_domain = idna.encode(d, uts46=True).decode()
    except idna.IDNAError:
        raise FieldError("Домен записан неверно — например, coop.ru или кооператив.рф.")
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise FieldError("Домен записан неверно — например, coop.ru или кооператив.рф.")
    if not (labels[-1].isalpha() or labels[-1].startswith("xn--")):
        raise FieldError("Домен должен оканчиваться зоной, например .ru или .рф.")
    return ascii_domain


def domain_display(ascii_domain: str) -> str:
    """The domain as people read it (Cyrillic for xn-- labels)."""
    try:
        return idna.decode(ascii_domain)
    except idna.IDNAError:
        return ascii_domain
