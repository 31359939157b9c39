"""The joining application (portal/applications/forms.py) and its requisite cleaners
(portal/requisites.py: ОГРН, ОГРНИП, КПП, БИК, accounts, names, birth date, passport).

Hand-checked data:
  ПАО Сбербанк: ИНН 7707083893, ОГРН 1027700132195 (102770013219 mod 11 = 5 → 5), КПП 773601001,
    БИК 044525225, корр. счёт 30101810400000000225 (public requisites).
  Bank key of that корр. счёт: "0" + БИК[4:6] = "025", string 02530101810400000000225, weights 7 1 3…:
    0·7+2·1+5·3+3·7+0·1+1·3+0·7+1·1+8·3+1·7+0·1+4·3+0·… +2·3+2·7+5·1 = 2+15+21+3+1+24+7+12+6+14+5
    = 110 → ends with 0, valid.
  Settlement account 40702810938000000001 with БИК 044525225: string "225" + account, products
    14 2 15 28 0 21 0 2 24 7 0 27 21 8 0 … 0 1 → sum 170 → valid (control digit 9 at position 9;
    `control_digit` below recomputes it). ВТБ БИК 044525187 / корр. 30101810700000000187 is a second
    real pair.
  ОГРНИП 304500116000157: 30450011600015 mod 13 = 7 → 7. ОГРНИП 304500116000050:
    30450011600005 mod 13 = 10 → 10 mod 10 = 0 (python-stdnum 2.2 wrongly refuses it).
  ИНН 12 digits 500123456750 (see test_requisites.py).
"""

from __future__ import annotations

import re
import sys
from datetime import date
from itertools import cycle
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal.applications.forms import (  # noqa: E402
    APPLICANT_TYPES,
    REP_BASIS_CHOICES,
    ApplicationForm,
    Field,
    applicant_type_or_default,
    display_name,
    empty_form,
    fields_for,
    signer_full_name,
    validate,
    validate_field,
)
from portal.requisites import (  # noqa: E402
    FieldError,
    clean_bik,
    clean_birth_date,
    clean_corr_account,
    clean_kpp,
    clean_ogrn,
    clean_ogrnip,
    clean_passport,
    clean_person_name,
    clean_settlement_account,
)

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
LATIN_WORD = re.compile(r"\b(?!ИНН|ОГРН|КПП|БИК|ИП|ДД|ММ|ГГГГ)[A-Za-z]{4,}\b")

SBER_BIK = "044525225"
SBER_CORR = "30101810400000000225"
SBER_ACCOUNT = "40702810938000000001"
VTB_BIK = "044525187"
VTB_CORR = "30101810700000000187"


def key_sum(prefix: str, account: str) -> int:
    return sum(int(d) * w for d, w in zip(prefix + account, cycle((7, 1, 3))))


def control_digit(bik: str, account: str) -> str:
    """The account with its control digit (position 9) computed for the БИК."""
    for x in "0123456789":
        candidate = account[:8] + x + account[9:]
        if key_sum(bik[-3:], candidate) % 10 == 0:
            return candidate
    raise AssertionError("no control digit")


def assert_russian(message: str) -> None:
    assert CYRILLIC.search(message), message
    assert not LATIN_WORD.search(message.replace("name@example.ru", "")), message


# --- ОГРН / ОГРНИП ---------------------------------------------------------------------------------


def test_ogrn_valid():
    assert clean_ogrn("1027700132195") == "1027700132195"
    assert clean_ogrn(" 1027700 132195 ") == "1027700132195"


@pytest.mark.parametrize("bad, fragment", [
    ("", "Укажите ОГРН"),
    ("1027700132196", "контрольной"),
    ("102770013219", "13 цифр"),
    ("10277001321951", "13 цифр"),
    ("10277OO132195", "только из цифр"),
    ("2027700132190", "1 или 5"),
])
def test_ogrn_invalid(bad, fragment):
    with pytest.raises(FieldError) as exc:
        clean_ogrn(bad)
    assert fragment in str(exc.value)
    assert_russian(str(exc.value))


def test_ogrnip_valid_including_remainder_ten():
    assert clean_ogrnip("304500116000157") == "304500116000157"
    assert 30450011600005 % 13 == 10
    assert clean_ogrnip("304500116000050") == "304500116000050"


@pytest.mark.parametrize("bad, fragment", [
    ("", "Укажите ОГРНИП"),
    ("304500116000158", "контрольной"),
    ("30450011600015", "15 цифр"),
    ("1027700132195", "15 цифр"),
    ("404500116000157", "цифры 3"),
])
def test_ogrnip_invalid(bad, fragment):
    with pytest.raises(FieldError) as exc:
        clean_ogrnip(bad)
    assert fragment in str(exc.value)
    assert_russian(str(exc.value))


# --- КПП / БИК ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("773601001", "773601001"),
    ("7736 01 001", "773601001"),
    ("7736ab001", "7736AB001"),
    ("77360A001", "77360A001"),
])
def test_kpp_valid(value, expected):
    assert clean_kpp(value) == expected


@pytest.mark.parametrize("bad, fragment", [
    ("", "Укажите КПП"),
    ("77360100", "9 знаков"),
    ("7736010011", "9 знаков"),
    ("A73601001", "4 цифры"),
    ("77360100A", "4 цифры"),
    ("7736АБ001", "латинские"),  # Cyrillic А and Б
])
def test_kpp_invalid(bad, fragment):
    with pytest.raises(FieldError) as exc:
        clean_kpp(bad)
    assert fragment in str(exc.value)


def test_bik():
    assert clean_bik(" 044525225 ") == SBER_BIK
    for bad, fragment in [("", "Укажите БИК"), ("04452522", "9 цифр"), ("144525225", "04"), ("04452522x", "цифр")]:
        with pytest.raises(FieldError) as exc:
            clean_bik(bad)
        assert fragment in str(exc.value)


# --- the bank control key ----------------------------------------------------------------------------


def test_key_of_known_pairs_by_hand():
    assert key_sum("0" + SBER_BIK[4:6], SBER_CORR) == 110
    assert key_sum(SBER_BIK[-3:], SBER_ACCOUNT) == 170
    assert control_digit(SBER_BIK, "40702810038000000001") == SBER_ACCOUNT


def test_valid_pairs_accepted():
    assert clean_corr_account(SBER_CORR, SBER_BIK) == SBER_CORR
    assert clean_corr_account("3010 1810 4000 0000 0225", SBER_BIK) == SBER_CORR
    assert clean_corr_account(VTB_CORR, VTB_BIK) == VTB_CORR
    assert clean_settlement_account(SBER_ACCOUNT, SBER_BIK) == SBER_ACCOUNT
    vtb_account = control_digit(VTB_BIK, "40802810000000012345")
    assert vtb_account == "40802810600000012345"
    assert clean_settlement_account(vtb_account, VTB_BIK) == vtb_account


@pytest.mark.parametrize("position", range(20))
def test_settlement_account_one_digit_changed_is_refused(position):
    d = SBER_ACCOUNT[position]
    changed = SBER_ACCOUNT[:position] + str((int(d) + 1) % 10) + SBER_ACCOUNT[position + 1:]
    with pytest.raises(FieldError) as exc:
        clean_settlement_account(changed, SBER_BIK)
    assert str(exc.value) == "Счёт не сходится с БИК — проверьте счёт и БИК."


def test_corr_account_one_digit_changed_is_refused():
    for changed in ("30101810500000000225", "30101810400000000235", "30101810400001000225"):
        with pytest.raises(FieldError) as exc:
            clean_corr_account(changed, SBER_BIK)
        assert "не сходится с БИК" in str(exc.value)


def test_accounts_against_the_wrong_bik_are_refused():
    with pytest.raises(FieldError, match="не сходится с БИК"):
        clean_settlement_account(SBER_ACCOUNT, VTB_BIK)
    with pytest.raises(FieldError, match="не сходится с БИК"):
        clean_corr_account(SBER_CORR, VTB_BIK)
    with pytest.raises(FieldError, match="не сходится с БИК"):
        clean_corr_account(VTB_CORR, SBER_BIK)


def test_account_format_errors():
    with pytest.raises(FieldError, match="Укажите расчётный счёт"):
        clean_settlement_account("", SBER_BIK)
    with pytest.raises(FieldError, match="20 цифр, а введено 19"):
        clean_settlement_account(SBER_ACCOUNT[:-1], SBER_BIK)
    with pytest.raises(FieldError, match="только из цифр"):
        clean_settlement_account("4070281093800000000O", SBER_BIK)
    with pytest.raises(FieldError, match="30101"):
        clean_corr_account("40101810400000000225", SBER_BIK)


@pytest.mark.parametrize("bik", ["", "12345", "144525225", None])
def test_account_is_not_blamed_while_the_bik_is_invalid(bik):
    assert clean_settlement_account("40702810000000000000", bik) == "40702810000000000000"
    assert clean_corr_account("30101810000000000000", bik) == "30101810000000000000"
    with pytest.raises(FieldError, match="20 цифр"):
        clean_settlement_account("123", bik)


# --- names, birth date, passport --------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("Иванов", "Иванов"),
    ("  Римский-Корсаков ", "Римский-Корсаков"),
    ("Салтыков - Щедрин", "Салтыков-Щедрин"),
    ("Д’Артаньян", "Д'Артаньян"),
    ("Мария  Анна", "Мария Анна"),
    ("Ёлкин", "Ёлкин"),
])
def test_person_name_valid(value, expected):
    assert clean_person_name(value, "Фамилия") == expected


@pytest.mark.parametrize("bad, fragment", [
    ("", "«Фамилия» не заполнено"),
    ("   ", "«Фамилия» не заполнено"),
    ("Ivanov", "русскими буквами"),
    ("Иванов2", "русскими буквами"),
    ("-Иванов", "русскими буквами"),
    ("Иванов--Петров", "русскими буквами"),
    ("Иван<script>", "русскими буквами"),
    ("Я" * 61, "не больше 60"),
])
def test_person_name_invalid(bad, fragment):
    with pytest.raises(FieldError) as exc:
        clean_person_name(bad, "Фамилия")
    assert fragment in str(exc.value)
    assert_russian(str(exc.value))


TODAY = date(2025, 6, 15)


@pytest.mark.parametrize("value, expected", [
    ("1980-03-05", "1980-03-05"),
    ("05.03.1980", "1980-03-05"),
    ("5.3.1980", "1980-03-05"),
    ("2011-06-15", "2011-06-15"),  # 14 today
    ("1905-06-16", "1905-06-16"),  # 119, turns 120 tomorrow
    ("1905-06-15", "1905-06-15"),  # 120 today
    ("1904-06-16", "1904-06-16"),  # still 120, 121 tomorrow
])
def test_birth_date_valid(value, expected):
    assert clean_birth_date(value, today=TODAY) == expected


@pytest.mark.parametrize("bad, fragment", [
    ("", "Укажите дату рождения"),
    ("2011-06-16", "с 14 лет"),  # 14 tomorrow
    ("2026-01-01", "в будущем"),
    ("1904-06-15", "120"),  # 121 today
    ("31.02.1980", "не бывает"),
    ("1980/03/05", "ДД.ММ.ГГГГ"),
    ("вчера", "ДД.ММ.ГГГГ"),
])
def test_birth_date_invalid(bad, fragment):
    with pytest.raises(FieldError) as exc:
        clean_birth_date(bad, today=TODAY)
    assert fragment in str(exc.value)


def test_birth_date_defaults_to_today():
    assert clean_birth_date("1980-03-05") == "1980-03-05"
    with pytest.raises(FieldError):
        clean_birth_date(date(date.today().year - 10, 1, 1).isoformat())


@pytest.mark.parametrize("value", ["4510 123456", "4510123456", "45 10 123456", "45 10 № 123456", "4510-123456"])
def test_passport_valid(value):
    assert clean_passport(value) == "4510 123456"


@pytest.mark.parametrize("bad, fragment", [
    ("", "Укажите серию и номер"),
    ("4510 12345", "10 цифр"),
    ("4510 1234567", "10 цифр"),
    ("45АБ 123456", "только цифры"),
    ("4510 000000", "нулей"),
])
def test_passport_invalid(bad, fragment):
    with pytest.raises(FieldError) as exc:
        clean_passport(bad)
    assert fragment in str(exc.value)


# --- the form: fields -------------------------------------------------------------------------------

ORG = {
    "full_name": "Потребительский кооператив «Заря»",
    "short_name": "ПК «Заря»",
    "inn": "7707083893",
    "ogrn": "1027700132195",
    "kpp": "773601001",
    "legal_address": "117312, г. Москва, ул. Вавилова, д. 19",
    "actual_address": "117312, г. Москва, ул. Вавилова, д. 19",
    "phone": "8 (912) 345-67-89",
    "email": "Info@Zarya.ru",
    "rep_surname": "Петров",
    "rep_name": "Пётр",
    "rep_patronymic": "Петрович",
    "rep_position": "Председатель совета",
    "rep_basis": "charter",
    "rep_poa_number": "",
    "rep_poa_date": "",
    "rep_passport_series": "4510",
    "rep_passport_number": "123456",
    "rep_passport_issued_by": "ГУ МВД России по г. Москве",
    "rep_passport_issue_date": "2015-04-20",
    "rep_passport_division_code": "770-001",
    "rep_address": "125009, г. Москва, ул. Тверская, д. 7, кв. 12",
    "join_decision_body": "Общее собрание пайщиков",
    "join_decision_date": "2025-11-20",
    "join_decision_number": "7",
    "bank_name": "ПАО Сбербанк",
    "bik": SBER_BIK,
    "corr_account": SBER_CORR,
    "settlement_account": SBER_ACCOUNT,
    "union_member_confirmed": "on",
}

PERSON = {
    "surname": "Иванова",
    "name": "Мария",
    "patronymic": "Сергеевна",
    "birth_date": "1980-03-05",
    "address": "620014, г. Екатеринбург, ул. Ленина, д. 1, кв. 2",
    "phone": "+7 912 345-67-89",
    "email": "maria@example.ru",
    "passport_series": "6510",
    "passport_number": "654321",
    "passport_issued_by": "ГУ МВД России по Свердловской области",
    "passport_issue_date": "2000-04-02",
    "passport_division_code": "660-001",
}

IP = {
    **PERSON,
    "inn": "500123456750",
    "ogrnip": "304500116000157",
    "bank_name": "Банк ВТБ (ПАО)",
    "bik": VTB_BIK,
    "corr_account": VTB_CORR,
    "settlement_account": "40802810600000012345",
}

DATA = {"organization": ORG, "individual": PERSON, "entrepreneur": IP}
INPUT_TYPES = {"text", "email", "tel", "date", "select", "checkbox"}


def with_(applicant_type: str, **changes: str) -> dict[str, str]:
    return {**DATA[applicant_type], **changes}


def test_applicant_types():
    assert APPLICANT_TYPES == {
        "organization": "Юридическое лицо (кооператив, организация)",
        "individual": "Физическое лицо",
        "entrepreneur": "Индивидуальный предприниматель",
    }
    assert list(APPLICANT_TYPES)[0] == "organization"
    assert applicant_type_or_default(None) == "organization"
    assert applicant_type_or_default("bogus") == "organization"
    assert applicant_type_or_default("entrepreneur") == "entrepreneur"
    with pytest.raises(KeyError):
        fields_for("bogus")


def test_field_names_per_type():
    assert [f.name for f in fields_for("organization")] == list(ORG)
    assert [f.name for f in fields_for("individual")] == list(PERSON)
    assert [f.name for f in fields_for("entrepreneur")] == list(IP)


@pytest.mark.parametrize("applicant_type", list(APPLICANT_TYPES))
def test_field_attributes(applicant_type):
    fields = fields_for(applicant_type)
    assert len({f.name for f in fields}) == len(fields)
    for f in fields:
        assert isinstance(f, Field)
        assert f.input_type in INPUT_TYPES
        assert CYRILLIC.search(f.label)
        assert not f.hint or CYRILLIC.search(f.hint)
        assert callable(f.cleaner)
    by_name = {f.name: f for f in fields}
    assert by_name["email"].input_type == "email" and by_name["email"].autocomplete == "email"
    assert by_name["phone"].input_type == "tel" and by_name["phone"].inputmode == "tel"
    if "inn" in by_name:
        assert by_name["inn"].inputmode == "numeric"


def test_organization_field_details():
    by_name = {f.name: f for f in fields_for("organization")}
    assert by_name["rep_basis"].input_type == "select"
    assert dict(by_name["rep_basis"].choices) == {"charter": "Устав", "power_of_attorney": "Доверенность"}
    assert REP_BASIS_CHOICES == dict(by_name["rep_basis"].choices)
    assert by_name["rep_patronymic"].required is False
    assert by_name["rep_poa_number"].required_if == ("rep_basis", "power_of_attorney")
    assert by_name["rep_poa_date"].required_if == ("rep_basis", "power_of_attorney")
    assert by_name["rep_poa_date"].input_type == "date"
    for name in ("rep_passport_series", "rep_passport_number", "rep_passport_issued_by", "rep_passport_issue_date",
                 "rep_passport_division_code", "rep_address", "join_decision_body", "join_decision_date",
                 "join_decision_number"):
        assert by_name[name].required and by_name[name].required_if is None, name
    confirm = by_name["union_member_confirmed"]
    assert confirm.input_type == "checkbox"
    assert confirm.label == "Подтверждаю, что организация состоит в Союзе потребительских обществ «РУСЬ»"


def test_individual_field_details():
    by_name = {f.name: f for f in fields_for("individual")}
    assert by_name["birth_date"].input_type == "date"
    assert by_name["birth_date"].autocomplete == "bday"
    for name in ("passport_series", "passport_number", "passport_issued_by", "passport_issue_date",
                 "passport_division_code"):
        assert by_name[name].required, name  # 152-ФЗ art. 9 part 4: the identity document of the subject
    assert by_name["passport_issue_date"].input_type == "date"
    assert by_name["patronymic"].required is False


# --- the form: validation --------------------------------------------------------------------------


def test_valid_organization():
    form = validate("organization", ORG)
    assert isinstance(form, ApplicationForm)
    assert form.valid and form.errors == {}
    assert form.applicant_type == "organization"
    assert form.clean["phone"] == "+79123456789"
    assert form.clean["email"] == "info@zarya.ru"
    assert form.clean["inn"] == "7707083893"
    assert form.clean["rep_poa_number"] == "" and form.clean["rep_poa_date"] == ""
    assert form.clean["join_decision_date"] == "2025-11-20" and form.clean["rep_passport_division_code"] == "770-001"
    assert form.clean["union_member_confirmed"] == "on"
    assert form.values == ORG


def test_valid_individual():
    form = validate("individual", PERSON)
    assert form.valid, form.errors
    assert form.clean["birth_date"] == "1980-03-05"
    assert (form.clean["passport_series"], form.clean["passport_number"]) == ("6510", "654321")
    assert "union_member_confirmed" not in form.clean


def test_valid_entrepreneur():
    form = validate("entrepreneur", IP)
    assert form.valid, form.errors
    assert form.clean["inn"] == "500123456750"
    assert form.clean["ogrnip"] == "304500116000157"
    assert form.clean["settlement_account"] == "40802810600000012345"


def test_birth_date_typed_by_hand_is_accepted():
    assert validate("individual", with_("individual", birth_date="05.03.1980")).clean["birth_date"] == "1980-03-05"


REQUIRED = {
    t: [f.name for f in fields_for(t) if f.required and f.required_if is None] for t in APPLICANT_TYPES
}
CASES = [(t, name) for t, names in REQUIRED.items() for name in names]


def test_required_lists():
    assert set(ORG) - set(REQUIRED["organization"]) == {"rep_patronymic", "rep_poa_number", "rep_poa_date"}
    assert set(PERSON) - set(REQUIRED["individual"]) == {"patronymic"}
    assert set(IP) - set(REQUIRED["entrepreneur"]) == {"patronymic"}


@pytest.mark.parametrize("applicant_type, name", CASES)
def test_each_required_field_missing_errs_on_exactly_that_field(applicant_type, name):
    form = validate(applicant_type, with_(applicant_type, **{name: ""}))
    assert list(form.errors) == [name], form.errors
    assert_russian(form.errors[name])
    assert form.clean == {}


@pytest.mark.parametrize("applicant_type, name", CASES)
def test_each_required_field_absent_key_errs(applicant_type, name):
    data = dict(DATA[applicant_type])
    del data[name]
    form = validate(applicant_type, data)
    if name == "bik":  # the accounts are then only checked for their 20 digits
        assert list(form.errors) == ["bik"]
    else:
        assert list(form.errors) == [name]


@pytest.mark.parametrize("applicant_type", list(APPLICANT_TYPES))
def test_empty_submission_errs_on_every_required_field(applicant_type):
    form = validate(applicant_type, {})
    assert set(form.errors) == set(REQUIRED[applicant_type])
    for message in form.errors.values():
        assert_russian(message)


@pytest.mark.parametrize("applicant_type, name, bad", [
    ("organization", "inn", "500123456750"),
    ("organization", "inn", "7707083894"),
    ("organization", "ogrn", "1027700132194"),
    ("organization", "kpp", "77360100"),
    ("organization", "email", "info@"),
    ("organization", "phone", "12345"),
    ("organization", "rep_surname", "Petrov"),
    ("organization", "rep_patronymic", "Petrovich"),
    ("organization", "rep_basis", "order"),
    ("organization", "bik", "144525225"),
    ("organization", "corr_account", VTB_CORR),
    ("organization", "settlement_account", "40702810938000000002"),
    ("organization", "union_member_confirmed", "yes"),
    ("individual", "birth_date", "2030-01-01"),
    ("individual", "passport_series", "123"),
    ("individual", "passport_number", "12345"),
    ("individual", "passport_number", "000000"),
    ("individual", "passport_issue_date", "2030-01-01"),
    ("individual", "passport_issue_date", "1990-05-05"),
    ("individual", "passport_issue_date", "1993-01-01"),
    ("individual", "passport_division_code", "77-001"),
    ("individual", "passport_issued_by", "МВД"),
    ("organization", "rep_passport_series", "45АБ"),
    ("organization", "rep_passport_division_code", "770-0011"),
    ("organization", "join_decision_date", "31.02.2025"),
    ("organization", "join_decision_date", "2099-01-01"),
    ("individual", "name", "Мария1"),
    ("entrepreneur", "inn", "7707083893"),
    ("entrepreneur", "ogrnip", "1027700132195"),
    ("entrepreneur", "ogrnip", "304500116000158"),
    ("entrepreneur", "settlement_account", SBER_ACCOUNT),
])
def test_bad_value_errs_on_exactly_that_field(applicant_type, name, bad):
    form = validate(applicant_type, with_(applicant_type, **{name: bad}))
    assert list(form.errors) == [name], form.errors
    assert_russian(form.errors[name])


def test_invalid_bik_blames_the_bik_not_the_accounts():
    form = validate("organization", with_("organization", bik="04452522"))
    assert list(form.errors) == ["bik"]
    form = validate("organization", with_("organization", bik=VTB_BIK))
    assert set(form.errors) == {"corr_account", "settlement_account"}
    assert form.errors["settlement_account"] == "Счёт не сходится с БИК — проверьте счёт и БИК."


def test_power_of_attorney_is_required_only_for_that_basis():
    poa = with_("organization", rep_basis="power_of_attorney")
    form = validate("organization", poa)
    assert list(form.errors) == ["rep_poa_number", "rep_poa_date"]
    assert "номер доверенности" in form.errors["rep_poa_number"]
    assert "дату доверенности" in form.errors["rep_poa_date"]
    form = validate("organization", {**poa, "rep_poa_number": "  № 12  ", "rep_poa_date": "15.01.2025"})
    assert form.valid, form.errors
    assert (form.clean["rep_poa_number"], form.clean["rep_poa_date"]) == ("12", "2025-01-15")
    # with the charter, whatever was typed there is ignored but kept in values
    form = validate("organization", with_("organization", rep_poa_number="№ 5"))
    assert form.valid and form.clean["rep_poa_number"] == ""
    assert form.values["rep_poa_number"] == "№ 5"


def test_passport_fields_are_cleaned_and_checked_together():
    form = validate("individual", with_("individual", passport_series=" 65 10 ", passport_division_code="660001",
                                        passport_issue_date="02.04.2000"))
    assert form.valid, form.errors
    assert form.clean["passport_series"] == "6510" and form.clean["passport_division_code"] == "660-001"
    assert form.clean["passport_issue_date"] == "2000-04-02"
    # Issued before the 14th birthday: the date is refused at the field, with both dates named.
    form = validate("individual", with_("individual", passport_issue_date="1993-03-04"))
    assert list(form.errors) == ["passport_issue_date"]
    form = validate("individual", with_("individual", birth_date="1990-03-05", passport_issue_date="2003-03-04"))
    assert list(form.errors) == ["passport_issue_date"] and "14 лет" in form.errors["passport_issue_date"]
    assert validate("individual", with_("individual", birth_date="1990-03-05",
                                        passport_issue_date="2004-03-05")).valid
    assert validate_field("individual", "passport_number", "000000", {"passport_series": "6510"})[1] == (
        "Номер паспорта не может состоять из одних нулей.")
    assert "4 цифры" in validate_field("organization", "rep_passport_series", "451", {})[1]
    assert "6 цифр" in validate_field("organization", "rep_passport_division_code", "7700", {})[1]


@pytest.mark.parametrize("value", ["", "off", "yes", "true", None])
def test_union_confirmation_required_for_organizations(value):
    form = validate("organization", with_("organization", union_member_confirmed=value))
    assert list(form.errors) == ["union_member_confirmed"]
    assert "«РУСЬ»" in form.errors["union_member_confirmed"]


def test_union_confirmation_not_asked_of_individuals_and_ip():
    for t in ("individual", "entrepreneur"):
        assert "union_member_confirmed" not in {f.name for f in fields_for(t)}
        assert validate(t, DATA[t]).valid


def test_passport_is_required_of_every_person():
    for t in ("individual", "entrepreneur"):
        assert validate(t, with_(t, passport_series="")).errors == {"passport_series": "Укажите серию паспорта."}
        assert list(validate(t, with_(t, passport_issued_by="")).errors) == ["passport_issued_by"]
    assert list(validate("organization", with_("organization", rep_passport_number="")).errors) == [
        "rep_passport_number"]


def test_values_are_kept_when_invalid():
    bad = with_("organization", inn="77070838", email="not an email", settlement_account="4070 2810 x",
                rep_surname="  Petrov ", union_member_confirmed="")
    form = validate("organization", bad)
    assert not form.valid
    assert form.values == bad
    assert form.clean == {}
    assert {"inn", "email", "settlement_account", "rep_surname", "union_member_confirmed"} == set(form.errors)
    for message in form.errors.values():
        assert_russian(message)


def test_none_unknown_keys_and_input_untouched():
    data = {**PERSON, "patronymic": None, "is_staff": "1", "applicant_type": "organization"}
    snapshot = dict(data)
    form = validate("individual", data)
    assert form.valid
    assert form.values["patronymic"] == "" and "is_staff" not in form.values
    assert data == snapshot


def test_empty_form():
    form = empty_form()
    assert form.applicant_type == "organization"
    assert form.values == {name: "" for name in ORG} and form.errors == {} and form.clean == {}
    assert set(empty_form("entrepreneur").values) == set(IP)


def test_form_is_frozen():
    form = validate("individual", PERSON)
    with pytest.raises(Exception):
        form.errors = {}  # type: ignore[misc]


# --- inline validation of one field ----------------------------------------------------------------


def test_validate_field_ok_and_error():
    assert validate_field("organization", "inn", "7707083893", {}) == ("7707083893", None)
    clean, error = validate_field("organization", "inn", "123", {})
    assert clean is None and "10 цифр" in error
    assert validate_field("entrepreneur", "inn", "500123456750", {}) == ("500123456750", None)
    assert validate_field("individual", "patronymic", "", {}) == ("", None)


def test_validate_field_accounts_use_the_bik_from_data():
    assert validate_field("organization", "settlement_account", SBER_ACCOUNT, {"bik": SBER_BIK}) == (
        SBER_ACCOUNT, None)
    assert validate_field("organization", "settlement_account", SBER_ACCOUNT, {"bik": VTB_BIK}) == (
        None, "Счёт не сходится с БИК — проверьте счёт и БИК.")
    assert validate_field("organization", "corr_account", SBER_CORR, {"bik": "0445"}) == (SBER_CORR, None)
    assert validate_field("organization", "corr_account", SBER_CORR, {}) == (SBER_CORR, None)
    clean, error = validate_field("organization", "corr_account", "301", {"bik": "0445"})
    assert clean is None and "20 цифр" in error


def test_validate_field_conditional_and_flags():
    assert validate_field("organization", "rep_poa_number", "", {"rep_basis": "charter"}) == ("", None)
    clean, error = validate_field("organization", "rep_poa_date", "", {"rep_basis": "power_of_attorney"})
    assert clean is None and error
    assert validate_field("individual", "passport_series", "", {})[1] == "Укажите серию паспорта."
    assert validate_field("organization", "union_member_confirmed", "on", {}) == ("on", None)
    assert validate_field("organization", "union_member_confirmed", "", {})[1]


def test_validate_field_unknown_names():
    with pytest.raises(KeyError):
        validate_field("individual", "kpp", "773601001", {})
    with pytest.raises(KeyError):
        validate_field("bogus", "inn", "7707083893", {})


# --- names ------------------------------------------------------------------------------------------


def test_display_and_signer_names():
    org = validate("organization", ORG).clean
    assert display_name("organization", org) == "ПК «Заря»"
    assert signer_full_name("organization", org) == "Петров Пётр Петрович"
    person = validate("individual", PERSON).clean
    assert display_name("individual", person) == "Иванова Мария Сергеевна"
    assert signer_full_name("individual", person) == "Иванова Мария Сергеевна"
    ip = validate("entrepreneur", with_("entrepreneur", patronymic="")).clean
    assert display_name("entrepreneur", ip) == "ИП Иванова Мария"
    assert signer_full_name("entrepreneur", ip) == "Иванова Мария"
    no_patronymic = validate("organization", with_("organization", rep_patronymic="")).clean
    assert signer_full_name("organization", no_patronymic) == "Петров Пётр"


def test_the_representatives_address_is_asked_for_the_consent():
    """152-ФЗ ст. 9 ч. 4 п. 1: the consent names the subject's address; for an organization the subject is its
    representative, so the form asks for it, at the field, in Russian."""
    form = validate("organization", with_("organization", rep_address="  "))
    assert form.errors["rep_address"] == "Укажите адрес регистрации представителя."
    form = validate("organization", with_("organization"))
    assert form.valid and form.clean["rep_address"] == "125009, г. Москва, ул. Тверская, д. 7, кв. 12"
