"""The connection form (J4): the four fees of the member's own cooperative, the domain, hosting, a description.

Pure functions: what was typed in, the cleaned values or a Russian message per field out.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

import idna

from portal.pricing.tariff import parse_rubles

FEES = (
    ("fee_entrance_org", "Вступительный взнос для организаций"),
    ("fee_share_org", "Минимальный паевой взнос для организаций"),
    ("fee_entrance_ind", "Вступительный взнос для физических лиц"),
    ("fee_share_ind", "Минимальный паевой взнос для физических лиц"),
)
HOSTING = {"hosted": "На серверах ВОСХОДа (бесплатно)", "self": "На своём сервере"}
FIELDS = (*(name for name, _ in FEES), "domain", "hosting", "description")
LABELS = {**dict(FEES), "domain": "Домен или поддомен", "hosting": "Размещение",
          "description": "Чем занимается кооператив"}

MAX_FEE = 100_000_000_00  # 100 million rubles, in kopecks: more is a typo
DESCRIPTION_MIN, DESCRIPTION_MAX = 10, 1000
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class DomainError(ValueError):
    """The domain cannot be accepted; the message is for the field."""


def parse_fee(raw: str) -> int:
    """Rubles as typed («1 000», «1000,50», «1 000.5 ₽») → kopecks; positive and sane, else ValueError (Russian)."""
    text = (raw or "").replace("₽", "").replace("руб.", "").replace("руб", "").strip()
    if not text:
        raise ValueError("Укажите сумму в рублях, например 1 000 или 1 000,50.")
    try:
        kopecks = parse_rubles("", text)
    except ValueError as exc:
        if "отрицательной" in str(exc):
            raise ValueError("Сумма должна быть больше нуля.") from None
        if "двух знаков" in str(exc):
            raise ValueError("Не больше двух знаков после запятой — копейки.") from None
        raise ValueError("Укажите сумму в рублях цифрами, например 1 000 или 1 000,50.") from None
    if kopecks <= 0:
        raise ValueError("Сумма должна быть больше нуля.")
    if kopecks > MAX_FEE:
        raise ValueError("Слишком большая сумма: проверьте, не лишние ли цифры.")
    return kopecks


def clean_domain(raw: str, *, operator_host: str = "") -> str:
    """A domain or subdomain as typed (Unicode or punycode) → its punycode in lower case.

    Refused: addresses, ports and paths, single labels, labels that are not letters, digits and hyphens, an
    all-digit top-level label, and the operator's own host."""
    text = " ".join((raw or "").split()).strip().rstrip(".").lower()
    if not text:
        raise DomainError("Укажите домен или поддомен, например coop.example.ru или кооп.рф.")
    if "://" in text or "/" in text or " " in text or "@" in text:
        raise DomainError("Укажите только имя домена — без https://, пробелов и косой черты, например кооп.рф.")
    if ":" in text.strip("[]") or text.startswith("["):
        raise DomainError("Домен указывается без порта и не IPv6-адресом.")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        raise DomainError("Нужен домен, а не IP-адрес: сайт кооператива открывается по имени.")
    for label in text.split("."):
        if not label:
            raise DomainError("Две точки подряд или точка в начале: между точками должна быть часть имени.")
        if label.startswith("-") or label.endswith("-"):
            raise DomainError("Часть домена не может начинаться или кончаться дефисом.")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise DomainError("В имени домена недопустимые символы: можно буквы, цифры и дефис; части разделяются "
                          "точкой.") from None
    except UnicodeError:
        raise DomainError("Слишком длинное имя домена или его часть (часть — не больше 63 символов).") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise DomainError("Укажите домен целиком, с зоной: например coop.example.ru или кооп.рф.")
    if len(ascii_name) > 253:
        raise DomainError("Слишком длинное имя домена: не больше 253 символов.")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise DomainError("Каждая часть домена — буквы, цифры и дефис, не начинается и не кончается дефисом.")
    if labels[-1].isdigit():
        raise DomainError("Зона домена не может состоять из цифр.")
    if operator_host and ascii_name == operator_host.lower():
        raise DomainError("Это домен портала ВОСХОДа — укажите домен своего кооператива.")
    return ascii_name


def shown_domain(ascii_name: str) -> str:
    """The punycode name as people read it (Unicode)."""
    try:
        return idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError):
        return ascii_name


@dataclass
class ConnectionForm:
    values: dict[str, str]  # as typed
    clean: dict = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


def validate(values: dict[str, str], *, operator_host: str = "") -> ConnectionForm:
    """Every field checked at once; the cleaned values are kopecks, punycode, a hosting key, plain text."""
    typed = {name: str(values.get(name) or "") for name in FIELDS}
    form = ConnectionForm(typed)
    for name, _label in FEES:
        try:
            form.clean[name] = parse_fee(typed[name])
        except ValueError as exc:
            form.errors[name] = str(exc)
    try:
        form.clean["domain"] = clean_domain(typed["domain"], operator_host=operator_host)
    except DomainError as exc:
        form.errors["domain"] = str(exc)
    hosting = typed["hosting"] or "hosted"
    if hosting not in HOSTING:
        form.errors["hosting"] = "Выберите, где разместить сайт кооператива."
    else:
        form.clean["hosting"] = hosting
    description = " ".join(typed["description"].split())
    if len(description) < DESCRIPTION_MIN:
        form.errors["description"] = "Опишите в нескольких словах, чем занимается кооператив (от 10 символов)."
    elif len(description) > DESCRIPTION_MAX:
        form.errors["description"] = f"Не больше {DESCRIPTION_MAX} символов — сейчас {len(description)}."
    else:
        form.clean["description"] = description
    return form
