"""The joining application of ПК «ВОСХОД» (SPEC §3 J1): declarative fields per applicant type,
pure validation, Russian errors per field, nothing typed lost."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable, Mapping

from portal.requisites import (
    FieldError,
    clean_bik,
    clean_birth_date,
    clean_corr_account,
    clean_email,
    clean_inn,
    clean_kpp,
    clean_ogrn,
    clean_ogrnip,
    clean_passport,
    digits,
    clean_person_name,
    clean_phone,
    clean_text,
    clean_settlement_account,
)

APPLICANT_TYPES = {
    "organization": "Юридическое лицо (кооператив, организация)",
    "individual": "Физическое лицо",
    "entrepreneur": "Индивидуальный предприниматель",
}
DEFAULT_APPLICANT_TYPE = "organization"

REP_BASIS_CHOICES = {
    "charter": "Устав",
    "power_of_attorney": "Доверенность",
}

Cleaner = Callable[[str, Mapping[str, str]], str]  # (typed value, all typed data) -> clean value


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    cleaner: Cleaner
    hint: str = ""
    input_type: str = "text"  # text / email / tel / date / select / checkbox
    required: bool = True
    autocomplete: str = "off"
    inputmode: str = ""  # "" (browser default) / numeric / tel / email
    section: str = ""  # heading of the group the field is shown in
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for selects
    maxlength: int | None = None
    required_if: tuple[str, str] | None = None  # (other field, its value) that makes this one required

    def is_required(self, data: Mapping[str, str]) -> bool:
        if self.required_if is not None:
            other, expected = self.required_if
            return _str(data.get(other)) == expected
        return self.required

    def shown(self, value: str) -> str:
        """The value as a person reads it: a choice's label, «да» for a ticked box, a date as 14.03.1985."""
        if self.choices:
            return dict(self.choices).get(value, value)
        if self.input_type == "checkbox":
            return "да" if value == "on" else "нет"
        if self.input_type == "date" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            year, month, day = value.split("-")
            return f"{day}.{month}.{year}"
        return value

    def applies(self, data: Mapping[str, str]) -> bool:
        """False for a conditional field whose condition is not met (its value is then ignored)."""
        if self.required_if is None:
            return True
        other, expected = self.required_if
        return _str(data.get(other)) == expected


@dataclass(frozen=True)
class ApplicationForm:
    values: dict[str, str]  # what was typed, to show back
    errors: dict[str, str]  # field -> Russian message
    clean: dict[str, str]  # normalised values, complete only when there are no errors
    applicant_type: str = DEFAULT_APPLICANT_TYPE

    @property
    def valid(self) -> bool:
        return not self.errors


def _str(value: object) -> str:
    return "" if value is None else str(value)


# --- cleaners --------------------------------------------------------------------------------------


def _text(required_msg: str, *, min_len: int = 2, max_len: int = 300) -> Cleaner:
    def clean(value: str, data: Mapping[str, str]) -> str:
        return clean_text(value, required_msg, min_len=min_len, max_len=max_len)

    return clean


def _name(what: str) -> Cleaner:
    return lambda value, data: clean_person_name(value, what)


def _rep_basis(value: str, data: Mapping[str, str]) -> str:
    if value not in REP_BASIS_CHOICES:
        raise FieldError("Выберите, на основании чего действует представитель: устав или доверенность.")
    return value


def _union_confirmed(value: str, data: Mapping[str, str]) -> str:
    if value != "on":
        raise FieldError("Организация может вступить в ПК «ВОСХОД», только если состоит в Союзе «РУСЬ». "
                         "Подтвердите членство, отметив пункт.")
    return value


def _today() -> dt.date:
    from portal.clock import MOSCOW, now

    return now().astimezone(MOSCOW).date()


def parse_date(value: str) -> dt.date | None:
    """A date from <input type=date> (yyyy-mm-dd) or typed as dd.mm.yyyy; None when it is not one."""
    v = (value or "").strip()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", v)
    if m:
        y, mo, d = (int(x) for x in m.groups())
    else:
        m = re.fullmatch(r"(\d{1,2})[./](\d{1,2})[./](\d{4})", v)
        if not m:
            return None
        d, mo, y = (int(x) for x in m.groups())
    try:
        return dt.date(y, mo, d)
    except ValueError:
        return None


def _past_date(required_msg: str, what: str, *, earliest: dt.date = dt.date(1990, 1, 1)) -> Cleaner:
    """A date not in the future (a document already issued, a decision already taken). Returns ISO."""

    def clean(value: str, data: Mapping[str, str]) -> str:
        v = (value or "").strip()
        if not v:
            raise FieldError(required_msg)
        day = parse_date(v)
        if day is None:
            if re.fullmatch(r"\d{1,2}[./]\d{1,2}[./]\d{4}|\d{4}-\d{1,2}-\d{1,2}", v):
                raise FieldError("Такой даты не бывает — проверьте день и месяц.")
            raise FieldError(f"{what} — в виде ДД.ММ.ГГГГ, например 15.01.2025.")
        if day > _today():
            raise FieldError(f"{what} не может быть в будущем.")
        if day < earliest:
            raise FieldError(f"Проверьте год: {what[0].lower()}{what[1:]} раньше {earliest.year} года.")
        return day.isoformat()

    return clean


def _passport_series(value: str, data: Mapping[str, str]) -> str:
    raw = "".join((value or "").split())
    if not raw:
        raise FieldError("Укажите серию паспорта.")
    if not raw.isdigit():
        raise FieldError("Серия паспорта — только цифры, например 45 10.")
    if len(raw) != 4:
        raise FieldError(f"Серия паспорта — 4 цифры, а введено {len(raw)}.")
    return raw


def _passport_number(series_field: str) -> Cleaner:
    def clean(value: str, data: Mapping[str, str]) -> str:
        raw = "".join((value or "").split())
        if not raw:
            raise FieldError("Укажите номер паспорта.")
        if not raw.isdigit():
            raise FieldError("Номер паспорта — только цифры, например 123456.")
        if len(raw) != 6:
            raise FieldError(f"Номер паспорта — 6 цифр, а введено {len(raw)}.")
        series = "".join(_str(data.get(series_field)).split())
        # The whole series-and-number check of the requisites (all zeros, length) once the series is right.
        clean_passport((series if len(series) == 4 and series.isdigit() else "0000") + raw)
        return raw

    return clean


def _division_code(value: str, data: Mapping[str, str]) -> str:
    v = (value or "").strip()
    if not v:
        raise FieldError("Укажите код подразделения — он напечатан рядом с датой выдачи.")
    raw = digits(v)
    if not re.fullmatch(r"[\d\s\-‐‑–—]+", v):
        raise FieldError("Код подразделения — только цифры, например 770-001.")
    if len(raw) != 6:
        raise FieldError(f"Код подразделения — 6 цифр, например 770-001, а введено {len(raw)}.")
    return f"{raw[:3]}-{raw[3:]}"


_PASSPORT_EARLIEST = dt.date(1997, 7, 1)  # the passport of a citizen of Russia is issued since July 1997


def _passport_date(birth_field: str | None) -> Cleaner:
    base = _past_date("Укажите дату выдачи паспорта.", "Дата выдачи паспорта", earliest=_PASSPORT_EARLIEST)

    def clean(value: str, data: Mapping[str, str]) -> str:
        issued = base(value, data)
        try:  # checked against the birth date only when that one is right (its own error is at its field)
            born = dt.date.fromisoformat(clean_birth_date(_str(data.get(birth_field)))) if birth_field else None
        except FieldError:
            born = None
        if born is not None:
            fourteen = born.replace(year=born.year + 14) if (born.month, born.day) != (2, 29) else \
                dt.date(born.year + 14, 3, 1)
            if dt.date.fromisoformat(issued) < fourteen:
                raise FieldError("Паспорт выдаётся с 14 лет, а по дате рождения получается раньше — проверьте "
                                 "дату выдачи и дату рождения.")
        return issued

    return clean


def _poa_number(value: str, data: Mapping[str, str]) -> str:
    return clean_text(re.sub(r"^\s*№\s*", "", value or ""), "Укажите номер доверенности.", min_len=1, max_len=100)


def _decision_number(value: str, data: Mapping[str, str]) -> str:
    return clean_text(re.sub(r"^\s*№\s*", "", value or ""), "Укажите номер решения (протокола) о вступлении.",
                      min_len=1, max_len=100)


def _settlement(value: str, data: Mapping[str, str]) -> str:
    return clean_settlement_account(value, _str(data.get("bik")))


def _corr(value: str, data: Mapping[str, str]) -> str:
    return clean_corr_account(value, _str(data.get("bik")))


# --- the fields ------------------------------------------------------------------------------------


def _passport(prefix: str, section: str, birth_field: str | None) -> tuple[Field, ...]:
    """The passport of a citizen of Russia (152-ФЗ art. 9 part 4: the identity document, its number, date, issuer)."""
    return (
        Field(f"{prefix}passport_series", "Серия паспорта", _passport_series, section=section,
              inputmode="numeric", maxlength=5, hint="4 цифры, например 45 10."),
        Field(f"{prefix}passport_number", "Номер паспорта", _passport_number(f"{prefix}passport_series"),
              section=section, inputmode="numeric", maxlength=7, hint="6 цифр."),
        Field(f"{prefix}passport_issued_by", "Кем выдан",
              _text("Укажите, кем выдан паспорт — как написано в паспорте.", min_len=5, max_len=300),
              section=section, maxlength=300, hint="Как в паспорте, например ГУ МВД России по г. Москве."),
        Field(f"{prefix}passport_issue_date", "Дата выдачи", _passport_date(birth_field), section=section,
              input_type="date"),
        Field(f"{prefix}passport_division_code", "Код подразделения", _division_code, section=section,
              inputmode="numeric", maxlength=7, hint="6 цифр, например 770-001."),
    )


_BANK = (
    Field("bank_name", "Банк", _text("Укажите название банка."), section="Банковские реквизиты",
          hint="Как в реквизитах, например ПАО Сбербанк.", maxlength=300),
    Field("bik", "БИК", lambda v, d: clean_bik(v), section="Банковские реквизиты",
          hint="9 цифр, начинается с 04.", inputmode="numeric", maxlength=11),
    Field("corr_account", "Корреспондентский счёт", _corr, section="Банковские реквизиты",
          hint="20 цифр, начинается с 30101.", inputmode="numeric", maxlength=25),
    Field("settlement_account", "Расчётный счёт", _settlement, section="Банковские реквизиты",
          hint="20 цифр; проверяется по БИК.", inputmode="numeric", maxlength=25),
)

_ORGANIZATION = (
    Field("full_name", "Полное наименование", _text("Укажите полное наименование организации.", min_len=3),
          section="Организация", autocomplete="organization", maxlength=500,
          hint="Как в уставе, например Потребительский кооператив «Заря»."),
    Field("short_name", "Сокращённое наименование", _text("Укажите сокращённое наименование.", max_len=200),
          section="Организация", maxlength=200, hint="Например ПК «Заря»."),
    Field("inn", "ИНН", lambda v, d: clean_inn(v, length=10), section="Организация",
          hint="10 цифр.", inputmode="numeric", maxlength=12),
    Field("ogrn", "ОГРН", lambda v, d: clean_ogrn(v), section="Организация",
          hint="13 цифр.", inputmode="numeric", maxlength=15),
    Field("kpp", "КПП", lambda v, d: clean_kpp(v), section="Организация",
          hint="9 знаков, например 770101001.", maxlength=11),
    Field("legal_address", "Юридический адрес", _text("Укажите юридический адрес.", min_len=5, max_len=500),
          section="Организация", hint="С индексом, как в ЕГРЮЛ.", maxlength=500),
    Field("actual_address", "Фактический адрес", _text("Укажите фактический адрес.", min_len=5, max_len=500),
          section="Организация", hint="Если совпадает с юридическим, повторите его.", maxlength=500),
    Field("phone", "Телефон", lambda v, d: clean_phone(v), section="Организация", input_type="tel",
          autocomplete="tel", inputmode="tel", hint="Например +7 912 345-67-89.", maxlength=20),
    Field("email", "Электронная почта", lambda v, d: clean_email(v), section="Организация",
          input_type="email", autocomplete="email", inputmode="email", maxlength=254,
          hint="На неё придут письма о заявлении."),
    Field("rep_surname", "Фамилия", _name("Фамилия"), section="Представитель",
          autocomplete="family-name", maxlength=60),
    Field("rep_name", "Имя", _name("Имя"), section="Представитель", autocomplete="given-name", maxlength=60),
    Field("rep_patronymic", "Отчество", _name("Отчество"), section="Представитель", required=False,
          autocomplete="additional-name", maxlength=60, hint="Если есть."),
    Field("rep_position", "Должность", _text("Укажите должность представителя.", max_len=200),
          section="Представитель", autocomplete="organization-title", maxlength=200,
          hint="Например председатель совета."),
    Field("rep_basis", "Действует на основании", _rep_basis, section="Представитель", input_type="select",
          choices=tuple(REP_BASIS_CHOICES.items())),
    Field("rep_poa_number", "Номер доверенности", _poa_number, section="Представитель",
          required=False, required_if=("rep_basis", "power_of_attorney"), maxlength=100,
          hint="Например 12 или 77 АА 1234567."),
    Field("rep_poa_date", "Дата доверенности",
          _past_date("Укажите дату доверенности.", "Дата доверенности"), section="Представитель",
          input_type="date", required=False, required_if=("rep_basis", "power_of_attorney")),
    *_passport("rep_", "Паспорт представителя", None),
    # 152-ФЗ ст. 9 ч. 4 п. 1: the consent names the subject's address — here the representative is the subject.
    Field("rep_address", "Адрес регистрации представителя",
          _text("Укажите адрес регистрации представителя.", min_len=5, max_len=500),
          section="Паспорт представителя", maxlength=500, hint="С индексом, как в паспорте."),
    Field("join_decision_body", "Кто принял решение о вступлении",
          _text("Укажите орган, принявший решение о вступлении, например общее собрание участников.", min_len=3),
          section="Решение о вступлении в кооператив", maxlength=300,
          hint="Орган управления по уставу, например общее собрание участников или правление."),
    Field("join_decision_date", "Дата решения",
          _past_date("Укажите дату решения о вступлении.", "Дата решения"),
          section="Решение о вступлении в кооператив", input_type="date"),
    Field("join_decision_number", "Номер решения (протокола)", _decision_number,
          section="Решение о вступлении в кооператив", maxlength=100, hint="Например 3 или 2025/03."),
    *_BANK,
    Field("union_member_confirmed", "Подтверждаю, что организация состоит в Союзе потребительских обществ «РУСЬ»",
          _union_confirmed, section="Подтверждение", input_type="checkbox"),
)

_INDIVIDUAL = (
    Field("surname", "Фамилия", _name("Фамилия"), section="Заявитель", autocomplete="family-name", maxlength=60),
    Field("name", "Имя", _name("Имя"), section="Заявитель", autocomplete="given-name", maxlength=60),
    Field("patronymic", "Отчество", _name("Отчество"), section="Заявитель", required=False,
          autocomplete="additional-name", maxlength=60, hint="Если есть."),
    Field("birth_date", "Дата рождения", lambda v, d: clean_birth_date(v), section="Заявитель",
          input_type="date", autocomplete="bday"),
    Field("address", "Адрес регистрации", _text("Укажите адрес регистрации.", min_len=5, max_len=500),
          section="Заявитель", autocomplete="street-address", maxlength=500, hint="С индексом, как в паспорте."),
    Field("phone", "Телефон", lambda v, d: clean_phone(v), section="Заявитель", input_type="tel",
          autocomplete="tel", inputmode="tel", hint="Например +7 912 345-67-89.", maxlength=20),
    Field("email", "Электронная почта", lambda v, d: clean_email(v), section="Заявитель",
          input_type="email", autocomplete="email", inputmode="email", maxlength=254,
          hint="На неё придут письма о заявлении."),
    *_passport("", "Паспорт", "birth_date"),
)

_ENTREPRENEUR = (
    *_INDIVIDUAL,
    Field("inn", "ИНН", lambda v, d: clean_inn(v, length=12), section="Предприниматель",
          hint="12 цифр.", inputmode="numeric", maxlength=14),
    Field("ogrnip", "ОГРНИП", lambda v, d: clean_ogrnip(v), section="Предприниматель",
          hint="15 цифр.", inputmode="numeric", maxlength=17),
    *_BANK,
)

_FIELDS: dict[str, tuple[Field, ...]] = {
    "organization": _ORGANIZATION,
    "individual": _INDIVIDUAL,
    "entrepreneur": _ENTREPRENEUR,
}


def applicant_type_or_default(value: str | None) -> str:
    """The applicant type from a request; anything unknown means the default (organization)."""
    return value if value in APPLICANT_TYPES else DEFAULT_APPLICANT_TYPE


def fields_for(applicant_type: str) -> list[Field]:
    """The fields of the application for this type, in display order. Unknown type: KeyError."""
    return list(_FIELDS[applicant_type])


def field_for(applicant_type: str, name: str) -> Field:
    for f in _FIELDS[applicant_type]:
        if f.name == name:
            return f
    raise KeyError(name)


# --- validation ------------------------------------------------------------------------------------


def _check(field: Field, value: str, data: Mapping[str, str]) -> tuple[str, str | None]:
    if not field.applies(data):
        return "", None
    if not value.strip() and not field.is_required(data):
        return "", None
    try:
        return field.cleaner(value, data), None
    except FieldError as exc:
        return "", str(exc)


def validate_field(applicant_type: str, name: str, value: str, data: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Inline check of one field: (clean value, None) or (None, Russian error).

    `data` is the rest of the form (the БИК for the accounts, the basis for the power of attorney).
    Unknown type or field: KeyError.
    """
    field = field_for(applicant_type, name)
    data = {k: _str(v) for k, v in data.items()}
    data[name] = _str(value)
    clean, error = _check(field, data[name], data)
    return (None, error) if error else (clean, None)


def empty_form(applicant_type: str = DEFAULT_APPLICANT_TYPE) -> ApplicationForm:
    return ApplicationForm(values={f.name: "" for f in _FIELDS[applicant_type]}, errors={}, clean={},
                           applicant_type=applicant_type)


def validate(applicant_type: str, data: Mapping[str, str]) -> ApplicationForm:
    """The whole application. Unknown type: KeyError (use applicant_type_or_default first)."""
    fields = _FIELDS[applicant_type]
    values = {f.name: _str(data.get(f.name)) for f in fields}
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    for f in fields:
        value, error = _check(f, values[f.name], values)
        if error:
            errors[f.name] = error
        else:
            clean[f.name] = value
    return ApplicationForm(values=values, errors=errors, clean=clean if not errors else {},
                           applicant_type=applicant_type)


# --- names -----------------------------------------------------------------------------------------


def _full(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def display_name(applicant_type: str, clean: Mapping[str, str]) -> str:
    """Organization: its short name; individual: «Фамилия Имя Отчество»; ИП: «ИП Фамилия Имя Отчество»."""
    if applicant_type == "organization":
        return clean.get("short_name") or clean.get("full_name", "")
    person = _full(clean.get("surname", ""), clean.get("name", ""), clean.get("patronymic", ""))
    return f"ИП {person}" if applicant_type == "entrepreneur" else person


def signer_full_name(applicant_type: str, clean: Mapping[str, str]) -> str:
    """Who signs: the representative of an organization, otherwise the person."""
    if applicant_type == "organization":
        return _full(clean.get("rep_surname", ""), clean.get("rep_name", ""), clean.get("rep_patronymic", ""))
    return _full(clean.get("surname", ""), clean.get("name", ""), clean.get("patronymic", ""))
