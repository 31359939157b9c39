"""Registry of document templates (``pdf_templates/``) and the Jinja2 environment.

Registry
--------
``pdf_templates/templates.toml`` lists the documents::

    stylesheet = "print.css"          # shared print CSS, applied to every document

    [[templates]]
    id = "join_application"           # stable identifier (code name)
    version = 1                       # bump on every change of the text
    title = "Заявление о вступлении в пайщики"
    file = "join_application.html"

``TemplateInfo.sha256`` is the SHA-256 over the template file, every template it
extends/includes/imports (found with ``jinja2.meta``, transitively) and the stylesheet —
i.e. over everything that shapes the document body. The files are read once into memory and
rendering uses exactly the bytes that were hashed (editing a file on disk changes nothing
until ``reload_templates()``). The directory is ``$PORTAL_PDF_TEMPLATES_DIR`` or
``pdf_templates/`` next to the ``portal`` package (or in the current directory).

Context contract (what every template receives)
-----------------------------------------------
``data`` — the filled fields (a JSON-native dict: strings, ints, bools; dates as ISO
``"YYYY-MM-DD"`` strings; money as integer kopecks). For the joining package (all four
templates) it is the application:

* ``applicant_type``: ``"organization"`` | ``"individual"`` | ``"entrepreneur"`` (ИП);
* ``document_date``: ISO date printed as the date of the documents;
* ``phone``, ``email`` — every type;
* organization: ``org_full_name``, ``org_short_name``, ``inn`` (10), ``ogrn`` (13), ``kpp`` (9),
  ``legal_address``, ``actual_address``, ``rep_last_name``, ``rep_first_name``,
  ``rep_patronymic`` (may be ""), ``rep_position``, ``rep_basis`` (``"charter"`` — Устав |
  ``"power_of_attorney"`` — доверенность; then optional ``rep_poa_number``, ``rep_poa_date``),
  bank fields, ``union_member`` (bool: confirms membership in Союз «РУСЬ»); the representative's
  identity document (the subject of the personal-data consent, 152-ФЗ art. 9 part 4):
  ``rep_passport_series``, ``rep_passport_number``, ``rep_passport_issued_by``,
  ``rep_passport_issue_date``, ``rep_passport_division_code`` and optional ``rep_address``;
  the decision of the applicant's body to join: ``join_decision_body`` (e.g. «общее собрание
  участников»), ``join_decision_number``, ``join_decision_date``;
* individual: ``last_name``, ``first_name``, ``patronymic`` (may be ""), ``birth_date``,
  ``address``; passport: ``passport_series``, ``passport_number``, ``passport_issued_by``,
  ``passport_issue_date``, ``passport_division_code``;
* entrepreneur (ИП): the individual's fields + ``inn`` (12), ``ogrnip`` (15), bank fields;
* bank fields: ``bank_name``, ``bik``, ``corr_account``, ``settlement_account``.

Optional keys may be absent or ``""``/``None``; required ones raise ``UndefinedError``. The
version-2 templates read the passport, ``rep_passport_*``, ``rep_address``, ``join_decision_*``
and ``rep_poa_*`` keys with ``.get`` and print what is there.

``cooperative`` — the cooperative that issues the document (the operator ПК «ВОСХОД», or a
connected cooperative on its own domain): ``name_full``, ``name_short``, ``inn``, ``ogrn``,
``kpp``, ``address``, ``bank_name``, ``bik``, ``corr_account``, ``settlement_account``,
fees in kopecks ``fee_entrance_org``, ``fee_share_org``, ``fee_entrance_ind``,
``fee_share_ind``; optional ``email``, ``phone``, ``site`` (URL of its portal, no trailing
slash: the texts name it where they define «портал Кооператива» and link
``{site}/docs/personal-data/``), ``city`` (the place of the documents, «г. Москва»),
``charter`` (the charter named with its edition and where it is published), ``processors``
(list of ``{name, address, purpose}``: whom the processing of personal data is entrusted to).

``pep_offer`` (optional) — the member's acceptance of the ПЭП offer: ``template_id``,
``template_version``, ``template_sha256``, ``accepted_at`` (ISO UTC string), ``ip``,
``user_agent``, optional ``email``. A signed document carries it at the top level of its
``data`` (beside ``data`` and ``cooperative``), and the signature sheet prints it.

``pep_agreement`` (version 2) is an offer: it is rendered with ``cooperative`` and the optional
``pep_offer`` only — no ``data``, no ``signer`` — and prints an «Акцепт оферты» block when
``pep_offer`` is given (``sample_offer_context``). ``_base.html`` and the macros need neither
``data`` nor ``signer``.

``signer`` (signed documents) — ``full_name``, ``email``, ``role`` (e.g. "Заявитель", "Представитель заявителя");
optional ``public_key`` (base64 of the raw Ed25519 key).

Added by the renderer (``portal.documents.render``), never by callers: ``signature`` (the
signer's drawn signature: dict with ``image_uri``, ``full_name``, ``signed_at``, … — or None),
``signatures`` (all of them), ``signing`` (hash, template, verification link and QR — or
None), ``inline_css`` and ``template`` (the ``TemplateInfo``). Templates put ``signature`` at
the signature line; ``_base.html`` appends ``_signature_page.html`` when ``signing`` is set.

``sample_context(applicant_type)`` returns a complete, format-valid example (with ``pep_offer``);
``sample_offer_context(accepted)`` the offer's.

For a signed document, ``canonical_document(template, data=<context without signer>,
signer=signer)`` — i.e. its ``data`` is ``{"data": …, "cooperative": …}`` — so the hash
covers every value printed in the body; ``render.context_from_document`` inverts it.

Filters: ``rub`` (kopecks → ``"1 000,00 ₽"``), ``rub_words`` (kopecks → «одна тысяча рублей
00 копеек»), ``date_ru`` (ISO string / date / datetime → ``"25.11.2026"``, datetimes in Moscow
time), ``datetime_msk`` (→ ``"25.11.2026 14:03:05 МСК"``), ``datetime_utc``, ``groups``
(long hex/base64 → space-separated groups of 8); Russian typography: ``typo`` (no-break spaces
after «г.», «ул.», «д.», «кв.», «№», «ИНН», «ст.», between initials and surname, inside
numbers — ``nbsp`` on plain text; ``_base.html`` runs every body through it), ``name`` (a proper
name: never hyphenated, wraps at spaces and hyphens only), ``nobr`` (a short token on one line),
``phone`` (``+7 495 123-45-67``; an unparsable value as it was). Globals: ``full_name``,
``initials`` («Петрова А.-В. П.» for a double first name), ``applicant_name``,
``signatory_name``, ``signatory_initials``, ``basis_text``, ``fees_for``. A frozen set keeps the
helpers it was signed with (``_FROZEN_GLOBALS``: version 1 prints «Петрова А.»).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import threading
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import jinja2
from jinja2 import meta
from markupsafe import Markup, escape

MOSCOW = ZoneInfo("Europe/Moscow")
REGISTRY_FILE = "templates.toml"

PACKAGE_DIR = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """Where ``pdf_templates/`` is: env override, the source tree, then the working directory."""
    override = os.environ.get("PORTAL_PDF_TEMPLATES_DIR")
    if override:
        return Path(override).resolve()
    for candidate in (PACKAGE_DIR.parent.parent / "pdf_templates", Path.cwd() / "pdf_templates"):
        if (candidate / REGISTRY_FILE).is_file():
            return candidate.resolve()
    raise FileNotFoundError("pdf_templates/templates.toml not found; set PORTAL_PDF_TEMPLATES_DIR")


class TemplateNotFound(KeyError):
    pass


@dataclass(frozen=True)
class TemplateInfo:
    id: str
    version: int
    title: str
    path: Path
    sha256: str
    directory: str = ""  # "" — the current texts; "v1" … — a frozen earlier set (pdf_templates/v1/)


@dataclass(frozen=True)
class _FileSet:
    """One directory of template files (the current one or a frozen version): snapshot + environment."""

    path: Path
    sources: Mapping[str, str]  # file name -> text (snapshot)
    raw: Mapping[str, bytes]
    environment: jinja2.Environment


@dataclass(frozen=True)
class _Registry:
    directory: Path
    stylesheet: str
    sets: Mapping[str, _FileSet]  # "" and e.g. "v1"
    templates: Mapping[tuple[str, int], TemplateInfo]
    current: Mapping[str, TemplateInfo]  # id -> the highest version


_lock = threading.Lock()


def _dependencies(env: jinja2.Environment, name: str, sources: Mapping[str, str]) -> list[str]:
    seen: list[str] = []
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        if current not in sources:
            raise FileNotFoundError(f"pdf_templates/{current} referenced but missing")
        seen.append(current)
        for ref in meta.find_referenced_templates(env.parse(sources[current])):
            if ref is None:
                raise ValueError(f"{current}: dynamic template references are not allowed")
            stack.append(ref)
    return seen


def _template_sha256(files: list[str], raw: Mapping[str, bytes]) -> str:
    # File names are relative to their set's directory, so a frozen copy (v1/) keeps its hash.
    digest = hashlib.sha256()
    for file_name in files:
        content = raw[file_name]
        digest.update(f"{file_name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def _file_set(path: Path, set_name: str = "") -> _FileSet:
    raw: dict[str, bytes] = {}
    for file in sorted(path.iterdir()):
        if file.is_file() and file.suffix in {".html", ".css"}:
            raw[file.name] = file.read_bytes()
    sources = MappingProxyType({name: content.decode("utf-8") for name, content in raw.items()})
    return _FileSet(path, sources, MappingProxyType(raw), make_environment(sources, set_name))


@lru_cache(maxsize=1)
def _registry() -> _Registry:
    directory = templates_dir()
    config = tomllib.loads((directory / REGISTRY_FILE).read_text(encoding="utf-8"))
    stylesheet = config.get("stylesheet", "print.css")
    sets: dict[str, _FileSet] = {}
    templates: dict[tuple[str, int], TemplateInfo] = {}
    for entry in config.get("templates", []):
        template_id, file_name, version = entry["id"], entry["file"], int(entry["version"])
        set_name = str(entry.get("directory", ""))
        if set_name and (not set_name.isidentifier() or set_name.startswith("_")):
            raise ValueError(f"template directory {set_name!r}: a plain name such as v1")
        if set_name not in sets:
            sets[set_name] = _file_set(directory / set_name if set_name else directory, set_name)
        files = sets[set_name]
        if stylesheet not in files.raw:
            raise FileNotFoundError(f"pdf_templates/{set_name + '/' if set_name else ''}{stylesheet} missing")
        if (template_id, version) in templates:
            raise ValueError(f"duplicate template {template_id!r} version {version}")
        needed = _dependencies(files.environment, file_name, files.sources)
        templates[(template_id, version)] = TemplateInfo(
            id=template_id,
            version=version,
            title=str(entry["title"]),
            path=files.path / file_name,
            sha256=_template_sha256(needed + [stylesheet], files.raw),
            directory=set_name,
        )
    current: dict[str, TemplateInfo] = {}
    for info in templates.values():
        if info.id not in current or info.version > current[info.id].version:
            current[info.id] = info
    return _Registry(directory, stylesheet, MappingProxyType(sets), MappingProxyType(templates),
                     MappingProxyType(current))


def reload_templates() -> None:
    """Forget the snapshot (dev, tests); the next call re-reads ``pdf_templates/``."""
    with _lock:
        _registry.cache_clear()
        from portal.documents import render  # the renderer caches the parsed stylesheet

        render._stylesheet.cache_clear()
        render._fetcher.cache_clear()


def directory() -> Path:
    """The ``pdf_templates/`` directory of the current snapshot."""
    return _registry().directory


def get_template(template_id: str, version: int | None = None) -> TemplateInfo:
    """The current (highest) version of a template, or the given one (documents signed earlier)."""
    registry = _registry()
    try:
        return registry.current[template_id] if version is None else registry.templates[(template_id, version)]
    except KeyError:
        raise TemplateNotFound(template_id if version is None else f"{template_id} v{version}") from None


def all_templates() -> list[TemplateInfo]:
    """The current version of every template."""
    return list(_registry().current.values())


def all_versions() -> list[TemplateInfo]:
    """Every version of every template, earlier ones included."""
    return list(_registry().templates.values())


def template_source(file_name: str, set_name: str = "") -> str:
    """Text of a file of the snapshot (e.g. the stylesheet of a template's set)."""
    return _registry().sets[set_name].sources[file_name]


def set_directory(set_name: str = "") -> Path:
    return _registry().sets[set_name].path


def stylesheet_name() -> str:
    return _registry().stylesheet


def environment(set_name: str = "") -> jinja2.Environment:
    return _registry().sets[set_name].environment


def render_template(template_id: str, context: Mapping[str, Any], version: int | None = None) -> str:
    """Render the HTML of ``template_id`` (no signature parts unless the context has them)."""
    info = get_template(template_id, version)
    template = environment(info.directory).get_template(info.path.name)
    full = {
        "signature": None,
        "signatures": [],
        "signing": None,
        "inline_css": None,
        **context,
        "template": info,
    }
    return template.render(full)


# --------------------------------------------------------------------------- filters

_ONES_M = ["", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"]
_ONES_F = ["", "одна", "две", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"]
_TEENS = ["десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать",
          "шестнадцать", "семнадцать", "восемнадцать", "девятнадцать"]
_TENS = ["", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят",
         "восемьдесят", "девяносто"]
_HUNDREDS = ["", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
             "восемьсот", "девятьсот"]
# (forms for 1, 2-4, 5+; feminine?)
_SCALES = [
    (("", "", ""), False),
    (("тысяча", "тысячи", "тысяч"), True),
    (("миллион", "миллиона", "миллионов"), False),
    (("миллиард", "миллиарда", "миллиардов"), False),
]


def plural_ru(n: int, forms: tuple[str, str, str]) -> str:
    n = abs(n) % 100
    if 11 <= n <= 19:
        return forms[2]
    n %= 10
    if n == 1:
        return forms[0]
    if 2 <= n <= 4:
        return forms[1]
    return forms[2]


def _triad_words(n: int, feminine: bool) -> list[str]:
    words = [_HUNDREDS[n // 100]]
    rest = n % 100
    if 10 <= rest <= 19:
        words.append(_TEENS[rest - 10])
    else:
        words.append(_TENS[rest // 10])
        words.append((_ONES_F if feminine else _ONES_M)[rest % 10])
    return [w for w in words if w]


def number_words_ru(n: int, feminine: bool = False) -> str:
    """Cardinal number in Russian words (0 … 999 999 999 999)."""
    if n == 0:
        return "ноль"
    if n < 0 or n >= 10**12:
        raise ValueError("number out of range")
    parts: list[str] = []
    for index in range(len(_SCALES) - 1, -1, -1):
        triad = (n // 1000**index) % 1000
        if not triad:
            continue
        forms, scale_feminine = _SCALES[index]
        parts.extend(_triad_words(triad, feminine if index == 0 else scale_feminine))
        if index:
            parts.append(plural_ru(triad, forms))
    return " ".join(parts)


def _kopecks(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"money must be integer kopecks, got {value!r}")
    return value


def rub(value: Any) -> str:
    """Kopecks → ``"1 000,00 ₽"`` (Russian format; NBSP as the group separator)."""
    from portal.pricing.tariff import format_rub

    return format_rub(_kopecks(value))


def rub_words(value: Any) -> str:
    """Kopecks → «одна тысяча рублей 00 копеек»."""
    kopecks = _kopecks(value)
    sign = "минус " if kopecks < 0 else ""
    rubles, cents = divmod(abs(kopecks), 100)
    return (
        f"{sign}{number_words_ru(rubles)} {plural_ru(rubles, ('рубль', 'рубля', 'рублей'))} "
        f"{cents:02d} {plural_ru(cents, ('копейка', 'копейки', 'копеек'))}"
    )


def _as_datetime_or_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    raise TypeError(f"not a date: {value!r}")


def date_ru(value: Any) -> str:
    """ISO string / date / datetime → ``"25.11.2026"`` (aware datetimes in Moscow time)."""
    if value in (None, ""):
        return ""
    value = _as_datetime_or_date(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(MOSCOW)
    return value.strftime("%d.%m.%Y")


def _aware(value: Any) -> dt.datetime:
    value = _as_datetime_or_date(value)
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return value


def groups(value: Any, size: int = 8) -> str:
    """Split a long hash / base64 string into space-separated groups (readable, wraps well)."""
    text = str(value)
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def datetime_msk(value: Any) -> str:
    return _aware(value).astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M:%S МСК")


def datetime_utc(value: Any) -> str:
    return _aware(value).astimezone(dt.timezone.utc).strftime("%d.%m.%Y %H:%M:%S UTC")


# --------------------------------------------------------------------------- Russian typography

NBSP = "\u00a0"
_LETTER = "А-ЯЁа-яёA-Za-z"
# Abbreviations that stand before what they name: «г. Москва», «ул. Лесная», «д. 5», «ст. 9», «ч. 4».
_ABBREVIATIONS = ("г", "ул", "д", "кв", "корп", "стр", "оф", "ст", "ч", "п", "пп", "пом", "пер", "пр", "просп",
                  "пл", "наб", "мкр", "ш", "с", "к", "рп", "пгт", "обл", "им", "тел")
_ABBREVIATION_NBSP = re.compile(
    rf"(?<![{_LETTER}0-9\-.])((?:{'|'.join(_ABBREVIATIONS)})\.)\s+(?=[{_LETTER}0-9«\"(])", re.IGNORECASE
)
_NUMBER_SIGN_NBSP = re.compile(r"(№+)\s+")
_REQUISITE_NBSP = re.compile(r"(?<![А-ЯЁA-Z])(ИНН|КПП|ОГРНИП|ОГРН|БИК|ОКПО|СНИЛС|УИН)\s+(?=\d)")
_INITIAL = r"[А-ЯЁA-Z]\.(?:-[А-ЯЁA-Z]\.)?"
# «А. П. Смирнова», «А.-В. Петрова»: an initial keeps the next initial or the surname on its line.
_INITIAL_BEFORE = re.compile(rf"(?<![{_LETTER}\-.])({_INITIAL})\s+(?=[А-ЯЁA-Z])")
# «Смирнова А. П.»: the surname keeps its initials.
_SURNAME_BEFORE_INITIAL = re.compile(
    rf"(?<![{_LETTER}])([А-ЯЁA-Z][{_LETTER}]*(?:-[{_LETTER}]+)*)\s+(?={_INITIAL}(?:$|[\s,;:)/»\u00a0]))"
)
_DIGIT_SPACE = re.compile(r"(?<=\d)[ \t]+(?=\d)")  # «1 000», «45 12 345678», «+7 495 123-45-67»
_DASH_NBSP = re.compile(r"[ \t\r\n]+(?=[—–]\s)")  # a dash never starts a line
# Five capitals or more: a shorter word is never hyphenated anyway (hyphenate-limit-chars: 5 2 2).
_CAPS_WORD = re.compile(r"(?<![А-ЯЁA-Za-zа-яё\-])«?[А-ЯЁ]{5,}»?(?![А-ЯЁA-Za-zа-яё\-])")
_DOUBLE_INITIAL = re.compile(r"(?<![А-ЯЁа-яёA-Za-z\-])[А-ЯЁA-Z]\.-[А-ЯЁA-Z]\.")  # «А.-В.» never splits at its hyphen
_TAG = re.compile(r"(<[^>]*>)")


def _keep_together(match: re.Match) -> str:
    return f'<span class="nobr">{match.group(0)}</span>'


def nbsp(text: str) -> str:
    """Russian typography of plain text: no-break spaces where a line must not break.

    After «г.», «ул.», «д.», «кв.», «корп.», «стр.», «оф.», «ст.», «ч.», «п.» …; after «№»; between
    «ИНН», «ОГРН», «КПП», «БИК»… and their digits; between initials and the surname (either
    order; «А.-В.» too); between the digit groups of a number; before a dash.
    """
    text = _ABBREVIATION_NBSP.sub(r"\1" + NBSP, text)
    text = _NUMBER_SIGN_NBSP.sub(r"\1" + NBSP, text)
    text = _REQUISITE_NBSP.sub(r"\1" + NBSP, text)
    text = _INITIAL_BEFORE.sub(r"\1" + NBSP, text)
    text = _SURNAME_BEFORE_INITIAL.sub(r"\1" + NBSP, text)
    text = _DIGIT_SPACE.sub(NBSP, text)
    text = _DASH_NBSP.sub(NBSP, text)
    return text


def typo(value: Any) -> Markup:
    """``nbsp`` over HTML (a filter, also ``{% filter typo %}…{% endfilter %}`` over a whole body).

    Plain values are escaped first; markup is changed only in its text, never inside tags.
    Abbreviations of five or more capitals («ОГРНИП», «СНИЛС») and the initials of a double
    name («А.-В.») are wrapped in ``<span class="nobr">``: never hyphenated, never split.
    """
    if value is None:
        return Markup("")
    html = str(value if isinstance(value, Markup) else escape(str(value)))
    parts = _TAG.split(html)
    for index in range(0, len(parts), 2):  # even items are text, odd ones tags
        if parts[index]:
            text = _CAPS_WORD.sub(_keep_together, nbsp(parts[index]))
            parts[index] = _DOUBLE_INITIAL.sub(_keep_together, text)
    return Markup("".join(parts))


def _span(css_class: str, value: Any) -> Markup:
    if value is None or value == "":
        return Markup("")
    return Markup('<span class="{}">{}</span>').format(css_class, value)


def name(value: Any) -> Markup:
    """A proper name (a person, an organization, an address): never hyphenated, wraps only at
    spaces and hyphens (``span.name``: ``hyphens: none``); the text is escaped."""
    return _span("name", value)


def nobr(value: Any) -> Markup:
    """A short token kept on one line and never hyphenated (``span.nobr``); the text is escaped."""
    return _span("nobr", value)


def phone(value: Any) -> str:
    """A phone number in the international format: «84951234567» → «+7 495 123-45-67».

    Russian numbers may be written without the country code; a value that is not a possible
    phone number is returned as it was (stripped).
    """
    raw = "" if value is None else str(value).strip()
    if not raw:
        return ""
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, "RU")
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# --------------------------------------------------------------------------- template helpers

APPLICANT_TYPES = {
    "organization": "юридическое лицо",
    "individual": "физическое лицо",
    "entrepreneur": "индивидуальный предприниматель",
}


def full_name(*parts: Any) -> str:
    """("Иванов", "Иван", "") → «Иванов Иван»."""
    return " ".join(str(p).strip() for p in parts if p and str(p).strip())


def _initial(name: Any) -> str:
    """«Анна» → «А.», «Анна-Виктория» → «А.-В.» (each part of a double name), «» → «»."""
    parts = [part.strip() for part in str(name or "").strip().split("-")]
    return "-".join(f"{part[0]}." for part in parts if part)


def initials(last_name: str, first_name: str = "", patronymic: str = "") -> str:
    """("Иванов", "Иван", "Иванович") → «Иванов И. И.»; («Петрова», «Анна-Виктория») → «Петрова А.-В.»."""
    letters = " ".join(_initial(p) for p in (first_name, patronymic) if p and str(p).strip())
    return full_name(last_name, letters)


def _initials_v1(last_name: str, first_name: str = "", patronymic: str = "") -> str:
    """``initials`` as version 1 of the texts printed it (only the first letter of a double name)."""
    letters = " ".join(f"{str(p).strip()[0]}." for p in (first_name, patronymic) if p and str(p).strip())
    return full_name(last_name, letters)


def _check_type(data: Mapping[str, Any]) -> str:
    kind = data["applicant_type"]
    if kind not in APPLICANT_TYPES:
        raise ValueError(f"unknown applicant_type {kind!r}")
    return kind


def applicant_name(data: Mapping[str, Any]) -> str:
    """Organization: its full name; individual: surname, name, patronymic; ИП: prefixed."""
    kind = _check_type(data)
    if kind == "organization":
        return data["org_full_name"]
    name = full_name(data["last_name"], data["first_name"], data.get("patronymic"))
    return f"индивидуальный предприниматель {name}" if kind == "entrepreneur" else name


def signatory_name(data: Mapping[str, Any]) -> str:
    """The person who signs: the representative of an organization, else the applicant."""
    if _check_type(data) == "organization":
        return full_name(data["rep_last_name"], data["rep_first_name"], data.get("rep_patronymic"))
    return full_name(data["last_name"], data["first_name"], data.get("patronymic"))


def signatory_initials(data: Mapping[str, Any], _initials=None) -> str:
    make = _initials or initials
    if _check_type(data) == "organization":
        return make(data["rep_last_name"], data["rep_first_name"], data.get("rep_patronymic") or "")
    return make(data["last_name"], data["first_name"], data.get("patronymic") or "")


def _signatory_initials_v1(data: Mapping[str, Any]) -> str:
    return signatory_initials(data, _initials_v1)


def basis_text(data: Mapping[str, Any], case: str = "nominative") -> str:
    """The representative's authority: «Устав» / «доверенность № 7 от 01.02.2026»."""
    basis = data["rep_basis"]
    genitive = case == "genitive"
    if basis == "charter":
        return "Устава" if genitive else "Устав"
    if basis == "power_of_attorney":
        text = "доверенности" if genitive else "доверенность"
        if data.get("rep_poa_number"):
            text += f" № {data['rep_poa_number']}"
        if data.get("rep_poa_date"):
            text += f" от {date_ru(data['rep_poa_date'])}"
        return text
    raise ValueError(f"unknown rep_basis {basis!r}")


def fees_for(data: Mapping[str, Any], cooperative: Mapping[str, Any]) -> dict[str, int]:
    """Entrance and minimal share fees (kopecks) for the applicant's type."""
    suffix = "org" if _check_type(data) == "organization" else "ind"
    entrance = _kopecks(cooperative[f"fee_entrance_{suffix}"])
    share = _kopecks(cooperative[f"fee_share_{suffix}"])
    return {"entrance": entrance, "share": share, "total": entrance + share}


def unknown_applicant_type(kind: Any) -> str:
    raise ValueError(f"unknown applicant_type {kind!r}")


#: Helpers whose output changed after a version of the texts was frozen: a frozen set keeps the
#: helper it was signed with, so its documents re-render word for word.
_FROZEN_GLOBALS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "v1": MappingProxyType({"initials": _initials_v1, "signatory_initials": _signatory_initials_v1}),
})


def make_environment(sources: Mapping[str, str], set_name: str = "") -> jinja2.Environment:
    """Autoescaping, strict Jinja2 environment over a snapshot of the template files.

    ``set_name`` — "" for the current texts, or a frozen set ("v1"), which keeps its own helpers.
    """
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (sources[name], None, lambda: True) if name in sources else None),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        rub=rub,
        rub_words=rub_words,
        date_ru=date_ru,
        datetime_msk=datetime_msk,
        datetime_utc=datetime_utc,
        groups=groups,
        typo=typo,
        name=name,
        nobr=nobr,
        phone=phone,
    )
    env.globals.update(
        full_name=full_name,
        initials=initials,
        applicant_name=applicant_name,
        signatory_name=signatory_name,
        signatory_initials=signatory_initials,
        basis_text=basis_text,
        fees_for=fees_for,
        unknown_applicant_type=unknown_applicant_type,
    )
    env.globals.update(_FROZEN_GLOBALS.get(set_name, {}))
    return env


# --------------------------------------------------------------------------- sample context

#: Demo requisites (format-valid, fictitious), used by previews, the benchmark and tests.
SAMPLE_COOPERATIVE: Mapping[str, Any] = MappingProxyType({
    "name_full": "Потребительский кооператив «ВОСХОД»",
    "name_short": "ПК «ВОСХОД»",
    "inn": "7707083893",
    "ogrn": "1027700132195",
    "kpp": "770701001",
    "address": "г. Москва, ул. Примерная, д. 1",
    "email": "info@voskhod.coop",
    "phone": "+7 495 000-00-00",
    "site": "https://voskhod.coop",
    "bank_name": "ПАО Сбербанк",
    "bik": "044525225",
    "corr_account": "30101810400000000225",
    "settlement_account": "40703810938000000001",
    "fee_entrance_org": 100_000,
    "fee_share_org": 300_000,
    "fee_entrance_ind": 10_000,
    "fee_share_ind": 30_000,
    "city": "г. Москва",
    "charter": ("Устав Потребительского кооператива «ВОСХОД» в редакции № 2, утверждённой общим собранием "
                "пайщиков 15.01.2026 (протокол № 1), опубликован на портале https://voskhod.coop/docs/"),
    "processors": [
        {"name": "ООО «Хостинг-Центр»", "address": "123456, г. Москва, ул. Серверная, д. 7, стр. 1",
         "purpose": "размещение портала и хранение данных (хостинг)"},
        {"name": "ООО «Почтовый сервис»", "address": "190000, г. Санкт-Петербург, наб. реки Мойки, д. 12",
         "purpose": "отправка электронных писем"},
        {"name": "ООО НКО «ЮМани»", "address": "115035, г. Москва, ул. Садовническая, д. 82, стр. 2",
         "purpose": "приём платежей банковской картой"},
    ],
})

#: Demo acceptance of the ПЭП offer (``pep_offer``), as ``portal.accounts.offer.pep_offer`` records it.
SAMPLE_PEP_OFFER: Mapping[str, Any] = MappingProxyType({
    "template_id": "pep_agreement",
    "template_version": 2,
    "template_sha256": "0" * 64,
    "accepted_at": "2026-11-24T18:15:07Z",
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
    "email": "zayavitel@example.ru",
})


def sample_context(applicant_type: str = "organization") -> dict[str, Any]:
    """A complete example context for the joining package (see the contract above)."""
    common = {"applicant_type": applicant_type, "document_date": "2026-11-25",
              "phone": "+7 900 123-45-67", "email": "zayavitel@example.ru"}
    bank = {"bank_name": "АО «Альфа-Банк»", "bik": "044525593",
            "corr_account": "30101810200000000593", "settlement_account": "40702810401300000001"}
    if applicant_type == "organization":
        data = {**common, **bank,
                "org_full_name": "Потребительское общество «Рассвет»",
                "org_short_name": "ПО «Рассвет»",
                "inn": "5024002119", "ogrn": "1025002864710", "kpp": "502401001",
                "legal_address": "Московская обл., г. Красногорск, ул. Лесная, д. 5",
                "actual_address": "Московская обл., г. Красногорск, ул. Лесная, д. 5, оф. 3",
                "rep_last_name": "Смирнова", "rep_first_name": "Анна", "rep_patronymic": "Петровна",
                "rep_position": "председатель совета", "rep_basis": "charter",
                "rep_passport_series": "45 12", "rep_passport_number": "345678",
                "rep_passport_issued_by": "ГУ МВД России по г. Москве",
                "rep_passport_issue_date": "2015-06-30", "rep_passport_division_code": "770-001",
                "rep_address": "143401, Московская обл., г. Красногорск, ул. Речная, д. 2, кв. 8",
                "join_decision_body": "общее собрание пайщиков", "join_decision_number": "3",
                "join_decision_date": "2026-11-20",
                "union_member": True}
        signer = {"full_name": "Смирнова Анна Петровна", "email": common["email"],
                  "role": "Представитель заявителя"}
    elif applicant_type in ("individual", "entrepreneur"):
        data = {**common,
                "last_name": "Кузнецов", "first_name": "Иван", "patronymic": "Сергеевич",
                "birth_date": "1985-03-14",
                "address": "г. Тверь, ул. Советская, д. 10, кв. 4",
                "passport_series": "28 05", "passport_number": "123456",
                "passport_issued_by": "ОВД Центрального района г. Твери",
                "passport_issue_date": "2005-04-01", "passport_division_code": "692-001"}
        if applicant_type == "entrepreneur":
            data.update(bank, inn="500100732259", ogrnip="304500116000157")
        signer = {"full_name": "Кузнецов Иван Сергеевич", "email": common["email"], "role": "Заявитель"}
    else:
        raise ValueError(f"unknown applicant_type {applicant_type!r}")
    cooperative = {**SAMPLE_COOPERATIVE, "processors": [dict(p) for p in SAMPLE_COOPERATIVE["processors"]]}
    return {"data": data, "cooperative": cooperative, "signer": signer, "pep_offer": dict(SAMPLE_PEP_OFFER)}


def sample_offer_context(accepted: bool = True) -> dict[str, Any]:
    """The context of the ПЭП offer (``pep_agreement``): ``cooperative`` and, once accepted, ``pep_offer``."""
    cooperative = {**SAMPLE_COOPERATIVE, "processors": [dict(p) for p in SAMPLE_COOPERATIVE["processors"]]}
    return {"cooperative": cooperative, **({"pep_offer": dict(SAMPLE_PEP_OFFER)} if accepted else {})}
