"""The 1C bank statement parser: encodings, amounts, which documents are incoming, errors with their line."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.payments.statement import (
    StatementError, decode, document_id, parse_amount, parse_date, parse_statement,
)

OURS = "40703810500000000001"
OTHER = "40702810900000012345"


def document(number: str, amount: str, *, payer_account: str = OTHER, recipient_account: str = OURS,
             purpose: str = "Оплата по счёту № В-2026-000001. Без НДС", date: str = "01.12.2026",
             payer: str = "ООО «Ромашка»", extra: str = "") -> str:
    return (
        "СекцияДокумент=Платежное поручение\n"
        f"Номер={number}\n"
        f"Дата={date}\n"
        f"Сумма={amount}\n"
        f"ПлательщикСчет={payer_account}\n"
        f"Плательщик=ИНН 7707083893 {payer}\n"
        "ПлательщикИНН=7707083893\n"
        f"Плательщик1={payer}\n"
        f"ПолучательСчет={recipient_account}\n"
        "ПолучательИНН=9729000000\n"
        "Получатель1=ПК «ВОСХОД»\n"
        f"НазначениеПлатежа={purpose}\n"
        f"{extra}"
        "КонецДокумента\n"
    )


def statement(*documents: str, account: str = OURS, encoding: str = "Windows", end: bool = True) -> str:
    head = (
        "1CClientBankExchange\n"
        "ВерсияФормата=1.03\n"
        f"Кодировка={encoding}\n"
        "Отправитель=Бухгалтерия предприятия\n"
        "Получатель=\n"
        "ДатаСоздания=02.12.2026\n"
        "ВремяСоздания=09:15:00\n"
        "ДатаНачала=01.12.2026\n"
        "ДатаКонца=01.12.2026\n"
        f"РасчСчет={account}\n"
        "СекцияРасчСчет\n"
        "ДатаНачала=01.12.2026\n"
        "ДатаКонца=01.12.2026\n"
        f"РасчСчет={account}\n"
        "НачальныйОстаток=0.00\n"
        "ВсегоПоступило=8000.00\n"
        "ВсегоСписано=150.00\n"
        "КонечныйОстаток=7850.00\n"
        "КонецРасчСчет\n"
    )
    return head + "".join(documents) + ("КонецФайла\n" if end else "")


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_a_windows_1251_statement_with_crlf_gives_its_incoming_payments():
    text = statement(
        document("17", "4000.00", extra="ДатаПоступило=02.12.2026\n"),
        document("18", "150.00", payer_account=OURS, recipient_account=OTHER, purpose="Комиссия банка"),
        document("19", "4 000,5"),
    )
    data = text.replace("\n", "\r\n").encode("cp1251")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the test really is about a windows-1251 file
    parsed = parse_statement(data, OURS)
    assert parsed.encoding == "cp1251"
    assert parsed.accounts == (OURS, OURS)
    assert (parsed.start, parsed.end) == (dt.date(2026, 12, 1), dt.date(2026, 12, 1))
    assert [d.number for d in parsed.incoming] == ["17", "19"]  # the outgoing commission is left out
    assert parsed.outgoing == 1 and parsed.other == 0
    first, second = parsed.incoming
    assert first.amount == 400_000 and second.amount == 400_050
    assert isinstance(first.amount, int)
    assert first.date == dt.date(2026, 12, 1) and first.received_on == dt.date(2026, 12, 2)
    assert first.paid_on == dt.date(2026, 12, 2) and second.paid_on == dt.date(2026, 12, 1)
    assert first.payer == "ООО «Ромашка»" and first.payer_inn == "7707083893"
    assert first.payer_account == OTHER and first.recipient_account == OURS
    assert first.purpose == "Оплата по счёту № В-2026-000001. Без НДС"
    assert first.line == line_of(text, "СекцияДокумент")
    assert first.kind == "Платежное поручение"
    assert len(first.external_id) == 64 and first.external_id != second.external_id


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_a_utf8_statement_with_or_without_bom(bom):
    text = statement(document("5", "400"), encoding="UTF-8")
    parsed = parse_statement(bom + text.encode("utf-8"), OURS)
    assert parsed.encoding == "utf-8"
    assert [(d.number, d.amount) for d in parsed.incoming] == [("5", 40_000)]


def test_a_dos_866_statement_is_read_when_it_says_so():
    text = statement(document("7", "100.00"), encoding="DOS").replace("«", '"').replace("»", '"')
    parsed = parse_statement(text.encode("cp866"), OURS)
    assert parsed.encoding == "cp866"
    assert parsed.incoming[0].payer == 'ООО "Ромашка"' and parsed.incoming[0].amount == 10_000


def test_the_same_payment_order_has_the_same_id_in_any_file():
    a = parse_statement(statement(document("17", "4000.00")).encode("cp1251"), OURS).incoming[0]
    b = parse_statement(statement(document("017", "4 000,00", purpose="Оплата  по счёту № В-2026-000001.  Без НДС"))
                        .replace("\n", "\r\n").encode("utf-8"), OURS).incoming[0]
    assert a.external_id == b.external_id
    c = parse_statement(statement(document("17", "4000.01")).encode("cp1251"), OURS).incoming[0]
    d = parse_statement(statement(document("17", "4000.00", date="02.12.2026")).encode("cp1251"), OURS).incoming[0]
    e = parse_statement(statement(document("17", "4000.00", payer_account="40702810900000099999"))
                        .encode("cp1251"), OURS).incoming[0]
    assert len({a.external_id, c.external_id, d.external_id, e.external_id}) == 4
    assert a.external_id == document_id("17", dt.date(2026, 12, 1), 400_000, OTHER, a.purpose)


@pytest.mark.parametrize(("text", "kopecks"), [
    ("4000.00", 400_000), ("4000,00", 400_000), ("4 000,00", 400_000), ("4\u00a0000.00", 400_000),
    ("4000.5", 400_050), ("4000", 400_000), ("0.01", 1), ("1000000.99", 100_000_099), (" 12,3 ", 1230),
])
def test_amounts_are_exact_kopecks(text, kopecks):
    assert parse_amount(text) == kopecks


@pytest.mark.parametrize(("text", "message"), [
    ("4 000,0x", "не число"), ("4000.001", "больше двух знаков"), ("-5.00", "не число"), ("0.00", "больше нуля"),
    ("1e3", "не число"), ("4.000.00", "не число"), ("", "не указана"), ("NaN", "не число"),
])
def test_amounts_that_are_not_money_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


def test_dates():
    assert parse_date("31.12.2026") == dt.date(2026, 12, 31)
    with pytest.raises(ValueError, match="ДД.ММ.ГГГГ"):
        parse_date("2026-12-31")
    with pytest.raises(ValueError, match="не бывает"):
        parse_date("31.02.2026")


def refused(text: str, *, encoding: str = "utf-8") -> StatementError:
    with pytest.raises(StatementError) as info:
        parse_statement(text.encode(encoding), OURS)
    return info.value


def test_a_bad_amount_is_refused_with_its_line():
    text = statement(document("17", "4000.00"), document("18", "4 000,0x"))
    error = refused(text, encoding="cp1251")
    assert error.line == line_of(text, "Сумма=4 000,0x")
    assert str(error) == f"Строка {error.line}: сумма «4 000,0x» не число"


def test_a_bad_date_is_refused_with_its_line():
    text = statement(document("17", "4000.00", date="32.12.2026"))
    error = refused(text)
    assert error.line == line_of(text, "Дата=32.12.2026") and "не бывает" in str(error)


def test_an_outgoing_document_with_a_bad_amount_is_refused_too():
    text = statement(document("17", "сто", payer_account=OURS, recipient_account=OTHER))
    assert refused(text).line == line_of(text, "Сумма=сто")


def test_a_file_cut_short_is_refused():
    text = statement(document("17", "4000.00"), end=False)
    error = refused(text)
    assert "КонецФайла" in str(error) and error.line == len(text.splitlines())
    text = statement(document("17", "4000.00")).replace("КонецДокумента\n", "")
    error = refused(text)
    assert error.line == line_of(text, "СекцияДокумент") and "КонецДокумента" in str(error)


def test_a_document_opened_inside_another_is_refused():
    text = statement(document("17", "4000.00").replace("КонецДокумента\n", ""), document("18", "1.00"))
    error = refused(text)
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith("СекцияДокумент")]
    assert error.line == lines[1] and f"со строки {lines[0]}" in str(error)


def test_a_document_without_its_sum_is_refused_at_its_first_line():
    text = statement(document("17", "4000.00").replace("Сумма=4000.00\n", ""))
    error = refused(text)
    assert error.line == line_of(text, "СекцияДокумент") and "«Сумма»" in str(error)


def test_other_files_are_refused():
    error = refused("Дата;Сумма;Назначение\n01.12.2026;4000;счёт\n")
    assert error.line == 1 and "1CClientBankExchange" in str(error)
    assert "пустой" in str(refused("  \n"))
    text = statement(document("17", "4000.00")).replace("Номер=17", "Номер 17")
    assert refused(text).line == line_of(text, "Номер 17")


def test_a_statement_of_another_account_is_refused():
    text = statement(document("17", "4000.00", recipient_account=OTHER), account=OTHER)
    error = refused(text)
    assert error.line == line_of(text, "РасчСчет=") and OURS in str(error) and OTHER in str(error)


def test_text_after_the_end_of_file_is_refused():
    text = statement(document("17", "4000.00")) + "Сумма=1.00\n"
    assert refused(text).line == len(text.splitlines())


def test_a_purpose_split_over_numbered_lines_is_joined():
    doc = document("17", "4000.00").replace(
        "НазначениеПлатежа=Оплата по счёту № В-2026-000001. Без НДС\n",
        "НазначениеПлатежа1=Оплата по счёту\nНазначениеПлатежа2=№ В-2026-000001. Без НДС\n")
    parsed = parse_statement(statement(doc).encode("utf-8"), OURS)
    assert parsed.incoming[0].purpose == "Оплата по счёту № В-2026-000001. Без НДС"


def test_undecodable_bytes_are_refused_with_their_line():
    data = statement(document("17", "4000.00")).encode("cp1251").replace("Плательщик1".encode("cp1251"),
                                                                          "Плат".encode("cp1251") + b"\x98")
    with pytest.raises(StatementError) as info:
        parse_statement(data, OURS)
    assert "windows-1251" in str(info.value)
    assert info.value.line == line_of(statement(document("17", "4000.00")), "Плательщик1")


def test_decode_prefers_utf8():
    assert decode("Кодировка=Windows".encode("utf-8")) == ("Кодировка=Windows", "utf-8")
    assert decode("Кодировка=Windows".encode("cp1251")) == ("Кодировка=Windows", "cp1251")
