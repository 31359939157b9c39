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


def clean_text(value: str, required_msg: str, *, min_len: int = 2, max_len: int = 300) -> str:
    """Free text: spaces collapsed, required, within length limits."""
    value = " ".join((value or "").split())
    if not value:
        raise FieldError(required_msg)
    if len(value) < min_len:
        raise FieldError(f"Слишком коротко: нужно не меньше {min_len} символов.")
    if len(value) > max_len:
        raise FieldError(f"Слишком длинно: не больше {max_len} символов.")
    return value


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


# --- e-mail -------------------------------------------------------------------------------------

import string  # noqa: E402

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email  # noqa: E402

_EMAIL_MALFORMED = "Адрес почты выглядит неверно — нужен вид name@example.ru."
# What may stand before the @ unquoted (RFC 5322 atext and the dot); other ASCII, such as , ; ( ) < > " \,
# would turn one address into several recipients or a broken header. Letters beyond ASCII are allowed.
_LOCAL_ASCII = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~.")


def clean_email(value: str) -> str:
    """One mailbox, checked by email-validator (no DNS): a plain local part (Cyrillic allowed), a real domain.

    Quoted local parts, IP addresses in brackets, display names and reserved domains (.local, .test …) are
    refused. Stored lowercased with the domain in IDNA: Maria@Пример.РФ → maria@xn--e1afmkfd.xn--p1ai.
    """
    email = (value or "").strip().lower()  # one case: Maria@ and maria@ are one person
    if not email:
        raise FieldError("Укажите адрес электронной почты.")
    if any(c.isspace() for c in email):
        raise FieldError(_EMAIL_MALFORMED)
    local, at, domain = email.rpartition("@")
    domain = domain.rstrip(".")  # «name@coop.ru.», the fully qualified form, is the same address
    if len(local) >= 2 and local[0] == local[-1] == '"':
        raise FieldError("Адрес почты в кавычках не подходит — укажите обычный адрес вида name@example.ru.")
    if not at or not local or "@" in local or len(email) > 254 or len(local) > 64:
        raise FieldError(_EMAIL_MALFORMED)
    if domain.startswith("["):
        raise FieldError("После @ нужен домен, а не IP-адрес — например, name@example.ru.")
    if "." not in domain[1:-1]:
        raise FieldError(_EMAIL_MALFORMED)
    bad = "".join(dict.fromkeys(c for c in local if c.isascii() and c not in _LOCAL_ASCII))
    if bad:
        shown = ", ".join(f"«{c}»" for c in bad)
        raise FieldError(f"В адресе почты до @ недопустимые символы: {shown} — нужен вид name@example.ru.")
    try:
        validate_email(f"postmaster@{domain}", check_deliverability=False)
    except EmailNotValidError:
        if domain.rsplit(".", 1)[-1] in SPECIAL_USE_DOMAIN_NAMES:
            raise FieldError("На такой домен почту из интернета не доставить — укажите настоящий адрес.")
        raise FieldError("В адресе почты неверный домен.")
    try:
        checked = validate_email(f"{local}@{domain}", check_deliverability=False, allow_quoted_local=False,
                                 allow_domain_literal=False, allow_display_name=False, allow_empty_local=False)
    except EmailNotValidError:
        raise FieldError(_EMAIL_MALFORMED)
    result = f"{checked.local_part}@{checked.ascii_domain}".lower()
    if len(result) > 254:  # the IDNA form of a long Cyrillic domain
        raise FieldError(_EMAIL_MALFORMED)
    return result


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


# --- Requisites of the joining application (SPEC §3 J1) -------------------------------------------

from datetime import date as _date  # noqa: E402
from itertools import cycle as _cycle  # noqa: E402

from stdnum.ru import ogrn as stdnum_ogrn  # noqa: E402


def _compact(value: str) -> str:
    """Without spaces, hyphens and the «№» sign; full-width digits made plain."""
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", (value or "").replace("№", "")))


def _digits_only(value: str, *, what: str, length: int) -> str:
    raw = _compact(value)
    if not raw:
        raise FieldError(f"Укажите {what}.")
    if not re.fullmatch(r"[0-9]+", raw):
        raise FieldError(f"{what[0].upper()}{what[1:]} состоит только из цифр.")
    if len(raw) != length:
        raise FieldError(f"{what[0].upper()}{what[1:]} состоит из {length} цифр, а введено {len(raw)}.")
    return raw


def clean_ogrn(value: str) -> str:
    """ОГРН of a legal entity: 13 digits, first 1 or 5, control digit by python-stdnum."""
    raw = _digits_only(value, what="ОГРН", length=13)
    if raw[0] not in "15":
        raise FieldError("ОГРН организации начинается с цифры 1 или 5 — проверьте номер.")
    try:
        return stdnum_ogrn.validate(raw)
    except InvalidChecksum:
        raise FieldError("ОГРН с такой контрольной цифрой не существует — проверьте цифры.")
    except ValidationError:
        raise FieldError("ОГРН записан неверно — проверьте цифры.")


def clean_ogrnip(value: str) -> str:
    """ОГРНИП: 15 digits, first 3; control digit = (first 14 digits mod 13) mod 10.

    Computed here: python-stdnum 2.2 compares the last digit with the remainder mod 13 without
    the final mod 10, so it refuses real ОГРНИП whose remainder is 10, 11 or 12.
    """
    raw = _digits_only(value, what="ОГРНИП", length=15)
    if raw[0] != "3":
        raise FieldError("ОГРНИП начинается с цифры 3 — проверьте номер.")
    if int(raw[:14]) % 13 % 10 != int(raw[14]):
        raise FieldError("ОГРНИП с такой контрольной цифрой не существует — проверьте цифры.")
    return raw


def clean_kpp(value: str) -> str:
    """КПП: 4 digits (tax office), 2 digits or capital Latin letters (reason), 3 digits."""
    raw = _compact(value).upper()
    if not raw:
        raise FieldError("Укажите КПП.")
    if len(raw) != 9:
        raise FieldError(f"КПП состоит из 9 знаков, а введено {len(raw)}.")
    if not re.fullmatch(r"[0-9]{4}[0-9A-Z]{2}[0-9]{3}", raw):
        raise FieldError("КПП записан неверно: 4 цифры, 2 цифры или латинские буквы, 3 цифры — например 770101001.")
    return raw


def clean_bik(value: str) -> str:
    """БИК: 9 digits, Russian banks start with 04."""
    raw = _digits_only(value, what="БИК", length=9)
    if not raw.startswith("04"):
        raise FieldError("БИК российского банка начинается с 04 — проверьте цифры.")
    return raw


def _bank_key_ok(prefix: str, account: str) -> bool:
    """The Bank of Russia control key: 3 digits of the БИК + 20 digits of the account, weights 7 1 3."""
    return sum(int(d) * w for d, w in zip(prefix + account, _cycle((7, 1, 3)))) % 10 == 0


def _bik_or_none(bik: str | None) -> str | None:
    try:
        return clean_bik(bik or "")
    except FieldError:
        return None


def clean_settlement_account(account: str, bik: str | None) -> str:
    """Расчётный счёт: 20 digits matching the БИК by the control key.

    While the БИК itself is missing or invalid, only the 20 digits are checked: the error
    belongs to the БИК, not to the account.
    """
    raw = _digits_only(account, what="расчётный счёт", length=20)
    bik_ok = _bik_or_none(bik)
    if bik_ok is None:
        return raw
    # An account in a Bank of Russia division (БИК ending 000–002) is keyed like a correspondent one.
    prefix = "0" + bik_ok[4:6] if bik_ok[-3:] in ("000", "001", "002") else bik_ok[-3:]
    if not _bank_key_ok(prefix, raw):
        raise FieldError("Счёт не сходится с БИК — проверьте счёт и БИК.")
    return raw


def clean_corr_account(account: str, bik: str | None) -> str:
    """Корреспондентский счёт: 20 digits, 30101…, ends with the БИК's last 3 digits, control key."""
    raw = _digits_only(account, what="корреспондентский счёт", length=20)
    if not raw.startswith("30101"):
        raise FieldError("Корреспондентский счёт банка начинается с 30101 — проверьте цифры.")
    bik_ok = _bik_or_none(bik)
    if bik_ok is None:
        return raw
    if raw[-3:] != bik_ok[-3:] or not _bank_key_ok("0" + bik_ok[4:6], raw):
        raise FieldError("Корреспондентский счёт не сходится с БИК — проверьте счёт и БИК.")
    return raw


_NAME_RE = re.compile(r"[А-Яа-яЁё]+(?:[ '\-][А-Яа-яЁё]+)*")


def clean_person_name(value: str, what: str) -> str:
    """Surname, name or patronymic: Cyrillic letters, hyphen, space, apostrophe.

    `what` is the field's name in the nominative («Фамилия», «Имя», «Отчество»).
    """
    v = unicodedata.normalize("NFKC", value or "")
    v = re.sub(r"[’ʼ`´]", "'", v)
    v = re.sub(r"[‐‑–—]", "-", v)
    v = " ".join(v.split())
    v = re.sub(r"\s*([-'])\s*", r"\1", v)
    if not v:
        raise FieldError(f"Поле «{what}» не заполнено.")
    if len(v) > 60:
        raise FieldError(f"{what}: слишком длинно, не больше 60 символов.")
    if not _NAME_RE.fullmatch(v):
        raise FieldError(f"{what} пишется русскими буквами; можно дефис, пробел и апостроф.")
    return v


def clean_birth_date(value: str, today: _date | None = None) -> str:
    """Birth date from <input type=date> (yyyy-mm-dd) or typed dd.mm.yyyy; age 14..120. Returns ISO."""
    v = (value or "").strip()
    if not v:
        raise FieldError("Укажите дату рождения.")
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", v) or None
    if m:
        y, mo, d = (int(x) for x in m.groups())
    else:
        m = re.fullmatch(r"(\d{1,2})[./](\d{1,2})[./](\d{4})", v)
        if not m:
            raise FieldError("Дата рождения — в виде ДД.ММ.ГГГГ, например 05.03.1980.")
        d, mo, y = (int(x) for x in m.groups())
    try:
        born = _date(y, mo, d)
    except ValueError:
        raise FieldError("Такой даты не бывает — проверьте день и месяц.")
    if today is None:
        from portal.clock import MOSCOW, now

        today = now().astimezone(MOSCOW).date()
    if born > today:
        raise FieldError("Дата рождения не может быть в будущем.")
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age < 14:
        raise FieldError("Вступить в кооператив можно с 14 лет.")
    if age > 120:
        raise FieldError("Проверьте год рождения: получается больше 120 лет.")
    return born.isoformat()


def clean_passport(value: str) -> str:
    """Russian passport: series (4 digits) and number (6 digits), returned as «1234 567890»."""
    raw = _compact(value)
    if not raw:
        raise FieldError("Укажите серию и номер паспорта.")
    if not re.fullmatch(r"[0-9]+", raw):
        raise FieldError("Серия и номер паспорта — только цифры, например 4510 123456.")
    if len(raw) != 10:
        raise FieldError(f"Серия и номер паспорта — 10 цифр (4 + 6), а введено {len(raw)}.")
    if raw[4:] == "000000":
        raise FieldError("Номер паспорта не может состоять из одних нулей.")
    return f"{raw[:4]} {raw[4:]}"
