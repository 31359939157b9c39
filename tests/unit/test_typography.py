"""Russian typography of the documents: the pure filters of ``portal.documents.templates``."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from portal.documents import templates
from portal.documents.templates import NBSP, initials, name, nbsp, nobr, phone, typo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("г. Москва", "г.~Москва"),
        ("ул. Лесная, д. 5, кв. 4", "ул.~Лесная, д.~5, кв.~4"),
        ("корп. 2, стр. 1, оф. 3", "корп.~2, стр.~1, оф.~3"),
        ("ст. 9 ч. 4 п. 1", "ст.~9 ч.~4 п.~1"),
        ("№ 3085-1", "№~3085-1"),
        ("ИНН 5024002119, КПП 502401001", "ИНН~5024002119, КПП~502401001"),
        ("ОГРН 1025002864710 и ОГРНИП 304500116000157", "ОГРН~1025002864710 и ОГРНИП~304500116000157"),
        ("Смирнова А. П.", "Смирнова~А.~П."),
        ("А. П. Смирнова", "А.~П.~Смирнова"),
        ("Петрова А.-В. П. /", "Петрова~А.-В.~П. /"),
        ("Бонч-Бруевич В. Д.", "Бонч-Бруевич~В.~Д."),
        ("1 000 000,00 ₽", "1~000~000,00 ₽"),
        ("паспорт 45 12 345678", "паспорт 45~12~345678"),
        ("+7 495 123-45-67", "+7~495~123-45-67"),
        ("Кооператив — это", "Кооператив~— это"),
    ],
)
def test_nbsp(text, expected):
    assert nbsp(text) == expected.replace("~", NBSP)


@pytest.mark.parametrize(
    "text",
    [
        "Московская обл., г.Красногорск",  # no space to make non-breaking
        "пайщики (члены) Кооператива. От имени Заявителя",  # a sentence end is no initial
        "рабочих дней",
        "ИНН заявителя",  # no digits follow
        "2–11",
    ],
)
def test_nbsp_leaves_ordinary_text_alone(text):
    assert nbsp(text) == text


def test_nbsp_is_idempotent():
    text = "г. Москва, ИНН 7707083893, Смирнова А. П., 1 000,00 ₽"
    assert nbsp(nbsp(text)) == nbsp(text)


def test_typo_escapes_plain_values():
    result = typo('<script>alert("г. Москва")</script> & ОГРНИП 1')
    assert isinstance(result, Markup)
    assert "<script>" not in result
    assert f"&lt;script&gt;alert(&#34;г.{NBSP}Москва&#34;)&lt;/script&gt; &amp; " in result
    assert f'<span class="nobr">ОГРНИП</span>{NBSP}1' in result


def test_typo_changes_only_the_text_of_markup():
    html = Markup('<p class="x" title="г. Москва">г. Москва, <b>д. 5</b></p><td>1</td> <td>2</td>')
    result = typo(html)
    assert result == Markup(f'<p class="x" title="г. Москва">г.{NBSP}Москва, <b>д.{NBSP}5</b></p><td>1</td> <td>2</td>')
    assert typo(None) == Markup("")


def test_typo_keeps_long_capital_abbreviations_unhyphenated():
    result = typo(Markup("ОГРНИП, СНИЛС и ПК «ВОСХОД»; ИНН, КПП, «РУСЬ»"))
    assert '<span class="nobr">ОГРНИП</span>' in result
    assert '<span class="nobr">СНИЛС</span>' in result
    assert '<span class="nobr">«ВОСХОД»</span>' in result
    assert "<span" not in result.split("«ВОСХОД»")[1]  # four letters and less are never hyphenated anyway


def test_typo_keeps_double_initials_on_one_line():
    result = typo("Петрова А.-В. П. и Бонч-Бруевич В. Д.")
    assert f'Петрова{NBSP}<span class="nobr">А.-В.</span>{NBSP}П.' in result
    assert "Бонч-Бруевич" in result and result.count("<span") == 1


def test_name_and_nobr_wrap_escaped_text():
    assert name("Иванов & <b>") == Markup('<span class="name">Иванов &amp; &lt;b&gt;</span>')
    assert nobr("ОГРНИП") == Markup('<span class="nobr">ОГРНИП</span>')
    assert name("") == Markup("") and name(None) == Markup("") and nobr(None) == Markup("")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+7 495 123-45-67", "+7 495 123-45-67"),
        ("84951234567", "+7 495 123-45-67"),
        ("+74951234567", "+7 495 123-45-67"),
        ("8 (495) 123 45 67", "+7 495 123-45-67"),
        ("+7 (900) 123-45-67", "+7 900 123-45-67"),
        ("  abc  ", "abc"),  # not a number: as it was
        ("12", "12"),  # too short to be a phone
        ("", ""),
        (None, ""),
    ],
)
def test_phone(raw, expected):
    assert phone(raw) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("Иванов", "Иван", "Иванович"), "Иванов И. И."),
        (("Иванов", "Иван", ""), "Иванов И."),
        (("Петрова", "Анна-Виктория", "Павловна"), "Петрова А.-В. П."),
        (("Петрова", "анна-виктория"), "Петрова а.-в."),
        (("Бонч-Бруевич", "Владимир", "Дмитриевич"), "Бонч-Бруевич В. Д."),
        (("Петрова", "Анна-", ""), "Петрова А."),
        (("Петрова", "", ""), "Петрова"),
    ],
)
def test_initials(args, expected):
    assert initials(*args) == expected


def test_signatory_initials_of_a_double_first_name():
    data = {"applicant_type": "organization", "rep_last_name": "Смирнова", "rep_first_name": "Анна-Виктория",
            "rep_patronymic": "Петровна"}
    assert templates.signatory_initials(data) == "Смирнова А.-В. П."
    data = {"applicant_type": "individual", "last_name": "Кузнецов", "first_name": "Иван-Павел", "patronymic": ""}
    assert templates.signatory_initials(data) == "Кузнецов И.-П."


def test_version_one_keeps_its_initials():
    """Documents signed with version 1 re-render word for word: the frozen set keeps the old helper."""
    data = {"applicant_type": "individual", "last_name": "Петрова", "first_name": "Анна-Виктория", "patronymic": ""}
    v1 = templates.environment("v1").globals["signatory_initials"]
    current = templates.environment("").globals["signatory_initials"]
    assert v1(data) == "Петрова А."
    assert current(data) == "Петрова А.-В."
    assert "typo" in templates.environment("").filters and "phone" in templates.environment("").filters
