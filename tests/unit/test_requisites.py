"""Pure checks of typed requisites (portal/requisites.py). Every expected value is checked by hand.

ИНН used below were verified with python-stdnum (stdnum.ru.inn.is_valid):
  7707083893, 7736050003 — valid 10-digit (organisation);
  500123456750 — valid 12-digit, both check digits computed from 5001234567 by the ФНС weights.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stdnum.ru import inn as stdnum_inn  # noqa: E402

from portal.requisites import (  # noqa: E402
    FieldError,
    clean_domain,
    clean_email,
    clean_inn,
    clean_phone,
    digits,
    domain_display,
)

CYRILLIC = re.compile(r"[А-Яа-яЁё]")

VALID_INN10 = ("7707083893", "7736050003")
VALID_INN12 = "500123456750"


def refused(fn, value, *args, **kwargs) -> str:
    with pytest.raises(FieldError) as exc:
        fn(value, *args, **kwargs)
    message = str(exc.value)
    assert CYRILLIC.search(message), message
    return message


# --- fixtures of the test data themselves --------------------------------------------------------


@pytest.mark.parametrize("number", [*VALID_INN10, VALID_INN12])
def test_the_inns_used_here_are_really_valid(number):
    assert stdnum_inn.is_valid(number)


def test_the_broken_inns_used_here_really_have_a_bad_checksum():
    assert not stdnum_inn.is_valid("7707083894")
    assert not stdnum_inn.is_valid("500123456751")


def test_field_error_is_a_value_error():
    assert issubclass(FieldError, ValueError)


def test_digits_keeps_only_digits():
    assert digits("+7 (912) 345-67-89") == "79123456789"
    assert digits("") == ""
    assert digits(None) == ""  # type: ignore[arg-type]


# --- ИНН -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", VALID_INN10)
def test_inn_valid_organisation(number):
    assert clean_inn(number) == number
    assert clean_inn(number, length=10) == number


@pytest.mark.parametrize(
    "typed",
    ["7707 083 893", "7707-083-893", " 7707083893 ", "77-07 08-38 93", "7707\t083893"],
)
def test_inn_spaces_and_dashes_are_stripped(typed):
    assert clean_inn(typed, length=10) == "7707083893"


@pytest.mark.parametrize("typed", ["7707083894", "7736050004", "1234567890"])
def test_inn_wrong_checksum_is_refused(typed):
    message = refused(clean_inn, typed, length=10)
    assert message == "ИНН с такой контрольной суммой не существует — проверьте цифры."


def test_inn_wrong_checksum_12_digits_is_refused():
    message = refused(clean_inn, "500123456751")
    assert "контрольной суммой" in message


@pytest.mark.parametrize("typed", ["77070838ab", "ИНН7707083893", "7707.083.893", "7707083893!"])
def test_inn_letters_and_other_signs_are_refused(typed):
    message = refused(clean_inn, typed, length=10)
    assert message == "ИНН состоит только из цифр."


def test_inn_12_digits_refused_when_organisation_expected():
    message = refused(clean_inn, VALID_INN12, length=10)
    assert "10 цифр" in message
    assert "введено 12" in message
    assert "организации" in message


def test_inn_10_digits_refused_when_person_expected():
    message = refused(clean_inn, "7707083893", length=12)
    assert "12 цифр" in message
    assert "введено 10" in message


@pytest.mark.parametrize("length", [12, None])
def test_inn_valid_12_digits(length):
    assert clean_inn(VALID_INN12, length=length) == VALID_INN12
    assert clean_inn("5001 2345 6750", length=length) == VALID_INN12


@pytest.mark.parametrize("typed", ["770708389", "77070838931", "1", "7707083893123"])
def test_inn_wrong_length_without_expected_length(typed):
    message = refused(clean_inn, typed)
    assert "10 цифр" in message and "12 цифр" in message


@pytest.mark.parametrize("typed", ["770708389", "77070838931"])
def test_inn_wrong_length_with_length_10_names_the_count(typed):
    message = refused(clean_inn, typed, length=10)
    assert f"введено {len(typed)}" in message


@pytest.mark.parametrize("typed", ["", "   ", " - ", None])
def test_inn_empty_is_refused(typed):
    assert refused(clean_inn, typed, length=10) == "Укажите ИНН."


# --- phone ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "8 (912) 345-67-89",
        "+7 912 345 67 89",
        "9123456789",
        "79123456789",
        "89123456789",
        "+7(912)345-67-89",
        "  +7 912 345-67-89  ",
    ],
)
def test_phone_is_normalised(typed):
    assert clean_phone(typed) == "+79123456789"


@pytest.mark.parametrize("typed", ["912345678", "+7 912 345 67", "123", "7912345678901", "791234567890"])
def test_phone_wrong_length_is_refused(typed):
    message = refused(clean_phone, typed)
    assert "10 цифр" in message


def test_phone_foreign_11_digits_are_refused():
    # 11 digits that do not start with 7 or 8 are not a Russian number
    refused(clean_phone, "+1 212 555 1234")


@pytest.mark.parametrize("typed", ["", "   ", "+", "()-", None])
def test_phone_empty_is_refused(typed):
    assert refused(clean_phone, typed) == "Укажите телефон."


def test_phone_fullwidth_digits_are_normalised_to_ascii():
    result = clean_phone("９１２３４５６７８９")
    assert result == "+79123456789"


# --- e-mail --------------------------------------------------------------------------------------


def test_email_plain():
    assert clean_email("info@coop.ru") == "info@coop.ru"


def test_email_is_trimmed():
    assert clean_email("  info@coop.ru \n") == "info@coop.ru"


def test_email_domain_is_lowercased_local_part_kept():
    assert clean_email("Info@Coop.RU") == "info@coop.ru"


def test_email_cyrillic_domain_becomes_punycode():
    assert clean_email("info@пример.рф") == "info@xn--e1afmkfd.xn--p1ai"
    assert clean_email(" info@ПРИМЕР.РФ ") == "info@xn--e1afmkfd.xn--p1ai"


def test_email_subdomain_ok():
    assert clean_email("a.b+tag@mail.coop.ru") == "a.b+tag@mail.coop.ru"


@pytest.mark.parametrize(
    "typed",
    [
        "info.coop.ru",  # no @
        "info@coop",  # no dot in the domain
        "in fo@coop.ru",  # space in the local part
        "info@co op.ru",  # space in the domain
        "info@@coop.ru",
        "@coop.ru",
        "info@",
        "info@.ru",
        "info@coop.",
        "a" * 65 + "@coop.ru",  # local part longer than 64
        "a@" + "b" * 250 + ".ru",  # longer than 254
    ],
)
def test_email_malformed_is_refused(typed):
    message = refused(clean_email, typed)
    assert "name@example.ru" in message


@pytest.mark.parametrize("typed", ["info@coop..ru", "info@-coop-.ru"])
def test_email_bad_domain_is_refused(typed):
    assert refused(clean_email, typed) == "В адресе почты неверный домен."


@pytest.mark.parametrize("typed", ["", "   ", None])
def test_email_empty_is_refused(typed):
    assert refused(clean_email, typed) == "Укажите адрес электронной почты."


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("postmaster,someone@example.org", "«,»"),  # was delivered to two recipients
        ('"><img/src=x>@example.org', "«\"», «>», «<»"),  # made the sender raise
        ("a;b@example.org", "«;»"),
        ("a(comment)b@example.org", "«(», «)»"),
        ("<maria@example.org>", "«<»"),
        ("a\\b@example.org", "«\\»"),
        ("a[1]@example.org", "«[», «]»"),
    ],
)
def test_email_characters_that_split_or_break_an_address_are_refused(typed, shown):
    message = refused(clean_email, typed)
    assert shown in message and "name@example.ru" in message


@pytest.mark.parametrize("typed", ['"john"@example.org', '"john doe"@example.org', '"a,b"@example.org'])
def test_email_quoted_local_part_is_refused(typed):
    message = refused(clean_email, typed)
    assert ("кавычках" in message or "выглядит неверно" in message) and "name@example.ru" in message


def test_email_ip_address_instead_of_domain_is_refused():
    assert "IP-адрес" in refused(clean_email, "maria@[192.0.2.1]")


@pytest.mark.parametrize(
    "typed",
    [
        "Мария <maria@example.org>",  # a display name
        "maria@example.org, ivan@example.org",
        "a..b@example.org",
        ".a@example.org",
        "a.@example.org",
        "a\u200b@example.org",  # an invisible character
        "maria@example.org\nBcc: x@example.org",
    ],
)
def test_email_other_exotic_forms_are_refused(typed):
    assert "name@example.ru" in refused(clean_email, typed)


@pytest.mark.parametrize("typed", ["a@coop.local", "a@voskhod.localhost", "a@x.test", "a@x.invalid", "a@x.onion"])
def test_email_reserved_domains_are_refused(typed):
    assert "настоящий адрес" in refused(clean_email, typed)


@pytest.mark.parametrize("typed", ["a@coop.123", "a@co_op.ru", "a@xn--zz.ru"])
def test_email_more_bad_domains_are_refused(typed):
    assert refused(clean_email, typed) == "В адресе почты неверный домен."


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("user@кооп.рф", "user@xn--j1aiae.xn--p1ai"),
        ("почта@кооп.рф", "почта@xn--j1aiae.xn--p1ai"),  # a Cyrillic mailbox (SMTPUTF8)
        ("ПОЧТА@Кооп.РФ", "почта@xn--j1aiae.xn--p1ai"),
        ("user@xn--j1aiae.xn--p1ai", "user@xn--j1aiae.xn--p1ai"),  # already stored form: unchanged
        ("o'brien+coop@example.org", "o'brien+coop@example.org"),
        ("a-b_c.d@sub.example.org", "a-b_c.d@sub.example.org"),
    ],
)
def test_email_internationalized_and_plain_forms_are_kept(typed, stored):
    assert clean_email(typed) == stored
    assert clean_email(stored) == stored  # cleaning the stored form again changes nothing


# --- domain --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("coop.ru", "coop.ru"),
        ("Coop.RU", "coop.ru"),
        ("  coop.ru  ", "coop.ru"),
        ("coop.ru.", "coop.ru"),
        ("https://coop.ru/path", "coop.ru"),
        ("http://coop.ru/", "coop.ru"),
        ("HTTPS://Coop.Ru/a/b?c=d", "coop.ru"),
        ("my.coop.example.ru", "my.coop.example.ru"),
        ("coop.localhost", "coop.localhost"),
        ("my-coop.ru", "my-coop.ru"),
        ("coop2024.ru", "coop2024.ru"),
        ("Кооператив.РФ", "xn--80aehnhyaikv.xn--p1ai"),
        ("кооператив.рф", "xn--80aehnhyaikv.xn--p1ai"),
        ("https://кооператив.рф/о-нас", "xn--80aehnhyaikv.xn--p1ai"),
        ("coop.рф", "coop.xn--p1ai"),
        ("xn--80aehnhyaikv.xn--p1ai", "xn--80aehnhyaikv.xn--p1ai"),
    ],
)
def test_domain_accepted(typed, expected):
    assert clean_domain(typed) == expected


def test_domain_result_is_ascii_lowercase():
    result = clean_domain("Кооператив.РФ")
    assert result.isascii() and result == result.lower()


@pytest.mark.parametrize("typed", ["coop", "localhost", "https://coop/path"])
def test_domain_single_label_is_refused(typed):
    message = refused(clean_domain, typed)
    assert "coop.ru" in message


@pytest.mark.parametrize("typed", ["my_coop.ru", "coop.r_u", "co op.ru", "my coop.рф"])
def test_domain_spaces_and_underscores_are_refused(typed):
    assert refused(clean_domain, typed) == "В домене не бывает пробелов и подчёркиваний."


@pytest.mark.parametrize(
    "typed",
    ["-coop.ru", "coop-.ru", "my.-coop.ru", "my.coop-.ru", "coop.-ru", "coop..ru", ".ru", "coop.ru:8080",
     "a" * 64 + ".ru"],
)
def test_domain_malformed_labels_are_refused(typed):
    refused(clean_domain, typed)


@pytest.mark.parametrize("typed", ["coop.123", "192.168.0.1", "coop.r1"])
def test_domain_numeric_tld_is_refused(typed):
    assert refused(clean_domain, typed) == "Домен должен оканчиваться зоной, например .ru или .рф."


@pytest.mark.parametrize("typed", ["", "   ", "https://", None])
def test_domain_empty_is_refused(typed):
    assert refused(clean_domain, typed) == "Укажите домен."


@pytest.mark.parametrize(
    "ascii_domain, shown",
    [
        ("xn--80aehnhyaikv.xn--p1ai", "кооператив.рф"),
        ("xn--e1afmkfd.xn--p1ai", "пример.рф"),
        ("coop.xn--p1ai", "coop.рф"),
        ("coop.ru", "coop.ru"),
    ],
)
def test_domain_display(ascii_domain, shown):
    assert domain_display(ascii_domain) == shown


@pytest.mark.parametrize("typed", ["Кооператив.РФ", "пример.рф", "my.coop.example.ru", "сайт.кооператив.рф"])
def test_domain_display_round_trips(typed):
    assert domain_display(clean_domain(typed)) == typed.lower()


def test_domain_display_leaves_undecodable_as_is():
    assert domain_display("xn--zz.ru") == "xn--zz.ru"


def test_email_domain_loses_its_trailing_dot():
    assert clean_email("a@b.ru.") == "a@b.ru"


def test_arabic_indic_digits_in_inn_are_refused_as_not_digits():
    with pytest.raises(FieldError, match="только из цифр"):
        clean_inn("٧٧٠٧٠٨٣٨٩٣", length=10)
