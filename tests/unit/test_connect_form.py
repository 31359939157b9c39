"""The connect form (portal/connect/forms.py): Russian errors per field, nothing typed is lost."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal.connect.forms import FIELDS, UNION_CHOICES, ConnectForm, empty_form, validate  # noqa: E402

CYRILLIC = re.compile(r"[А-Яа-яЁё]")

GOOD = {
    "coop_name": "  Потребительский   кооператив «Ромашка» ",
    "inn": "7707 083-893",
    "contact_name": " Иван  Петров ",
    "email": " Info@Пример.РФ ",
    "phone": "8 (912) 345-67-89",
    "domain": "https://Кооператив.РФ/about",
    "union_member": "in_progress",
    "message": "  Хотим подключиться.  ",
    "consent": "on",
}

GOOD_CLEAN = {
    "coop_name": "Потребительский кооператив «Ромашка»",
    "inn": "7707083893",
    "contact_name": "Иван Петров",
    "email": "info@xn--e1afmkfd.xn--p1ai",
    "phone": "+79123456789",
    "domain": "xn--80aehnhyaikv.xn--p1ai",
    "union_member": "in_progress",
    "message": "Хотим подключиться.",
    "consent": "on",
}


def with_(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


def assert_russian(form: ConnectForm) -> None:
    for field, message in form.errors.items():
        assert CYRILLIC.search(message), (field, message)


# --- a valid form --------------------------------------------------------------------------------


def test_fields_list():
    assert FIELDS == (
        "coop_name", "inn", "contact_name", "email", "phone", "domain", "union_member", "message", "consent",
    )


def test_valid_form_has_no_errors_and_normalised_values():
    form = validate(GOOD)
    assert form.errors == {}
    assert form.valid is True
    assert form.clean == GOOD_CLEAN


def test_valid_form_keeps_what_was_typed():
    assert validate(GOOD).values == GOOD


@pytest.mark.parametrize("choice", ["yes", "no", "in_progress"])
def test_each_union_choice_is_accepted(choice):
    form = validate(with_(union_member=choice))
    assert form.valid
    assert form.clean["union_member"] == choice


def test_union_choices_are_the_three_expected():
    assert set(UNION_CHOICES) == {"yes", "no", "in_progress"}


@pytest.mark.parametrize("domain", ["", "   "])
def test_domain_is_optional(domain):
    form = validate(with_(domain=domain))
    assert form.valid, form.errors
    assert form.clean["domain"] == ""
    assert form.values["domain"] == domain


def test_domain_missing_key_is_fine():
    data = dict(GOOD)
    del data["domain"]
    form = validate(data)
    assert form.valid
    assert form.clean["domain"] == ""
    assert form.values["domain"] == ""


@pytest.mark.parametrize("message", ["", "   "])
def test_message_is_optional(message):
    form = validate(with_(message=message))
    assert form.valid
    assert form.clean["message"] == ""


def test_message_of_exactly_2000_chars_is_accepted():
    text = "я" * 2000
    form = validate(with_(message=f"  {text}\n"))
    assert form.valid
    assert form.clean["message"] == text


def test_message_over_2000_chars_is_refused():
    text = "я" * 2001
    form = validate(with_(message=text))
    assert set(form.errors) == {"message"}
    assert "2000" in form.errors["message"]
    assert "2001" in form.errors["message"]
    assert form.values["message"] == text
    assert form.clean == {}


def test_message_keeps_inner_line_breaks():
    form = validate(with_(message="Строка 1\nСтрока 2"))
    assert form.clean["message"] == "Строка 1\nСтрока 2"


def test_coop_name_length_limits():
    assert validate(with_(coop_name="abc")).valid
    assert validate(with_(coop_name="я" * 300)).valid
    assert set(validate(with_(coop_name="ab")).errors) == {"coop_name"}
    assert "3" in validate(with_(coop_name="ab")).errors["coop_name"]
    assert "300" in validate(with_(coop_name="я" * 301)).errors["coop_name"]


def test_contact_name_length_limits():
    assert validate(with_(contact_name="Ян")).valid
    assert validate(with_(contact_name="я" * 200)).valid
    assert set(validate(with_(contact_name="Я")).errors) == {"contact_name"}
    assert "200" in validate(with_(contact_name="я" * 201)).errors["contact_name"]


def test_short_name_is_measured_after_collapsing_spaces():
    # "a  b" collapses to "a b" (3 chars) — accepted; " a " collapses to "a" — too short
    assert validate(with_(coop_name="a    b")).clean["coop_name"] == "a b"
    assert set(validate(with_(coop_name="  a  ")).errors) == {"coop_name"}


# --- one bad field at a time ---------------------------------------------------------------------


BAD = [
    ("coop_name", ""),
    ("coop_name", "   "),
    ("coop_name", "Ро"),
    ("coop_name", "я" * 301),
    ("inn", ""),
    ("inn", "7707083894"),  # wrong checksum
    ("inn", "77070838ab"),
    ("inn", "500123456750"),  # a valid 12-digit ИНН, but the form wants an organisation
    ("contact_name", ""),
    ("contact_name", "И"),
    ("contact_name", "я" * 201),
    ("email", ""),
    ("email", "info.coop.ru"),
    ("email", "info@coop"),
    ("email", "in fo@coop.ru"),
    ("phone", ""),
    ("phone", "12345"),
    ("phone", "+7 912 345 67 89 00"),
    ("domain", "coop"),
    ("domain", "my_coop.ru"),
    ("domain", "-coop.ru"),
    ("domain", "coop.123"),
    ("union_member", ""),
    ("union_member", "maybe"),
    ("union_member", "Yes"),
    ("union_member", UNION_CHOICES["yes"]),  # the label, not the key
    ("message", "x" * 2001),
    ("consent", ""),
    ("consent", "off"),
    ("consent", "yes"),
]


@pytest.mark.parametrize("field, bad", BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_bad_value_gives_an_error_on_exactly_that_field(field, bad):
    data = with_(**{field: bad})
    form = validate(data)
    assert set(form.errors) == {field}
    assert form.valid is False
    assert_russian(form)
    assert form.values == data  # everything typed is shown back unchanged, the bad value too
    assert form.clean == {}


def test_12_digit_inn_message_mentions_10_digits():
    form = validate(with_(inn="500123456750"))
    assert "10 цифр" in form.errors["inn"]


def test_consent_missing_is_refused():
    data = dict(GOOD)
    del data["consent"]
    form = validate(data)
    assert set(form.errors) == {"consent"}
    assert "согласия" in form.errors["consent"]
    assert form.values["consent"] == ""


def test_union_member_missing_is_refused():
    data = dict(GOOD)
    del data["union_member"]
    form = validate(data)
    assert set(form.errors) == {"union_member"}
    assert "Союзе" in form.errors["union_member"]


# --- many bad fields -----------------------------------------------------------------------------


def test_empty_submission_lists_every_required_field():
    form = validate({})
    assert set(form.errors) == {"coop_name", "inn", "contact_name", "email", "phone", "union_member", "consent"}
    assert form.values == {f: "" for f in FIELDS}
    assert form.clean == {}
    assert_russian(form)


def test_all_invalid_values_are_kept_unchanged():
    data = {
        "coop_name": " x ",
        "inn": "12-34",
        "contact_name": "",
        "email": "не почта",
        "phone": "  +7 (9",
        "domain": "плохой_домен",
        "union_member": "???",
        "message": "м" * 2500,
        "consent": "",
    }
    form = validate(data)
    assert set(form.errors) == set(FIELDS)
    assert form.values == data
    assert form.clean == {}
    assert_russian(form)


def test_none_values_become_empty_strings():
    form = validate({f: None for f in FIELDS})  # type: ignore[misc]
    assert form.values == {f: "" for f in FIELDS}
    assert not form.valid


def test_unknown_keys_are_ignored():
    form = validate(with_(extra="взлом", csrf="token"))
    assert form.valid
    assert set(form.values) == set(FIELDS)
    assert set(form.clean) == set(FIELDS)


def test_validate_does_not_change_the_input():
    data = dict(GOOD)
    validate(data)
    assert data == GOOD


def test_empty_form():
    form = empty_form()
    assert form.values == {f: "" for f in FIELDS}
    assert form.errors == {} and form.clean == {}


def test_form_is_frozen():
    form = validate(GOOD)
    with pytest.raises(Exception):
        form.errors = {}  # type: ignore[misc]
