"""The connect form (SPEC §6): pure validation, Russian errors per field, nothing typed lost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from portal.requisites import FieldError, clean_domain, clean_email, clean_inn, clean_phone, clean_text

FIELDS = ("coop_name", "inn", "contact_name", "email", "phone", "domain", "union_member", "message", "consent")
LABELS = {"coop_name": "Название кооператива", "inn": "ИНН кооператива", "contact_name": "Контактное лицо",
          "email": "Электронная почта", "phone": "Телефон", "domain": "Домен", "union_member": "Членство в «РУСЬ»",
          "message": "Сообщение", "consent": "Согласие на обработку персональных данных"}

UNION_CHOICES = {
    "yes": "Да, кооператив состоит в Союзе «РУСЬ»",
    "in_progress": "Вступаем сейчас",
    "no": "Нет, пока не состоит",
}


@dataclass(frozen=True)
class ConnectForm:
    values: dict[str, str]  # what was typed, to show back
    errors: dict[str, str]  # field -> Russian message
    clean: dict[str, str]  # normalised values, complete only when there are no errors

    @property
    def valid(self) -> bool:
        return not self.errors


def empty_form() -> ConnectForm:
    return ConnectForm(values={f: "" for f in FIELDS}, errors={}, clean={})


def validate(data: Mapping[str, str]) -> ConnectForm:
    values = {f: str(data.get(f, "") or "") for f in FIELDS}
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}

    def check(field: str, fn) -> None:
        try:
            clean[field] = fn(values[field])
        except FieldError as exc:
            errors[field] = str(exc)

    check("coop_name", lambda v: clean_text(v, "Укажите название кооператива.", min_len=3, max_len=300))
    check("inn", lambda v: clean_inn(v, length=10))
    check("contact_name", lambda v: clean_text(v, "Укажите, как к вам обращаться.", max_len=200))
    check("email", clean_email)
    check("phone", clean_phone)
    check("domain", lambda v: clean_domain(v) if v.strip() else "")

    def union(v: str) -> str:
        if v not in UNION_CHOICES:
            raise FieldError("Выберите, состоит ли кооператив в Союзе «РУСЬ».")
        return v

    check("union_member", union)

    def message(v: str) -> str:
        v = v.strip()
        if len(v) > 2000:
            raise FieldError(f"Сообщение длиннее 2000 символов ({len(v)}). Сократите его, пожалуйста.")
        return v

    check("message", message)

    def consent(v: str) -> str:
        if v != "on":
            raise FieldError("Без согласия на обработку персональных данных мы не сможем принять заявку.")
        return v

    check("consent", consent)
    return ConnectForm(values=values, errors=errors, clean=clean if not errors else {})
