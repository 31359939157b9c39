"""A bank statement in the 1C exchange format (1CClientBankExchange), read without touching the database.

The format (ВерсияФормата 1.02/1.03): a header of ``Ключ=Значение`` lines, sections ``СекцияРасчСчет`` …
``КонецРасчСчет`` with the account's balances, documents ``СекцияДокумент=<вид>`` … ``КонецДокумента`` and the
closing ``КонецФайла``. Banks write it in windows-1251 (``Кодировка=Windows``), in DOS code page 866
(``Кодировка=DOS``) or, lately, in UTF-8 — the bytes decide, the declaration breaks a tie.

``parse_statement`` reads the whole file before anything is stored: a file that does not parse is refused as a
whole with the number of the line at fault (``StatementError``), so an import never stores half a statement.
It returns the documents whose recipient is the cooperative's settlement account (incoming money), each with
its amount in kopecks and a stable id: the same payment order in two statements (or one statement imported
twice) has the same id, which is what keeps it from being credited twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

HEADER = "1CClientBankExchange"
MAX_BYTES = 5 * 1024 * 1024

# Sum: digits, optionally grouped by spaces, and up to two decimals after a dot or a comma.
_AMOUNT = re.compile(r"\d+(?:[.,]\d+)?")
_DATE = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
# «Кодировка=DOS» in code page 866: the one declaration that must be read before the text can be decoded.
_DOS_DECLARED = re.compile("Кодировка\\s*=\\s*DOS".encode("cp866"), re.IGNORECASE)


class StatementError(ValueError):
    """The file is refused; ``line`` is the 1-based line at fault (None: the file as a whole)."""

    def __init__(self, line: int | None, message: str):
        self.line = line
        self.message = message
        super().__init__(f"Строка {line}: {message}" if line else message)


@dataclass(frozen=True)
class StatementDocument:
    line: int  # where «СекцияДокумент» opens it
    kind: str  # «Платежное поручение», «Банковский ордер» …
    number: str
    date: dt.date
    amount: int  # kopecks
    payer: str
    payer_account: str
    payer_inn: str
    recipient_account: str
    recipient_inn: str
    purpose: str
    received_on: dt.date | None  # «ДатаПоступило»: when the money reached the account

    @property
    def paid_on(self) -> dt.date:
        return self.received_on or self.date

    @property
    def external_id(self) -> str:
        return document_id(self.number, self.date, self.amount, self.payer_account, self.purpose)


@dataclass(frozen=True)
class Statement:
    encoding: str  # utf-8 | cp1251 | cp866
    accounts: tuple[str, ...]  # «РасчСчет» of the header (the accounts the statement is for)
    incoming: list[StatementDocument]  # money to the cooperative's account
    outgoing: int  # documents paid from the account (ignored)
    other: int  # documents between other accounts (ignored)
    start: dt.date | None = None
    end: dt.date | None = None
    documents: list[StatementDocument] = field(default_factory=list)  # every document, in order


def document_id(number: str, date: dt.date, amount: int, payer_account: str, purpose: str) -> str:
    """SHA-256 of the document as the bank identifies it: number, date, amount, payer's account, purpose —
    normalised (spaces collapsed, case kept out), so re-exported statements give the same id."""
    parts = [_norm(number).lstrip("0") or "0", date.isoformat(), str(amount), _norm(payer_account),
             _norm(purpose).casefold()]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def parse_amount(text: str) -> int:
    """Rubles as banks and people write them — «4000.00», «4 000,00», «4000.5», «4000» — to kopecks, exactly
    (Decimal, never a float). ValueError with a Russian sentence for anything else."""
    compact = _SPACES.sub("", text)
    if not compact:
        raise ValueError("сумма не указана")
    if not _AMOUNT.fullmatch(compact):
        raise ValueError(f"сумма «{text.strip()}» не число")
    try:
        rubles = Decimal(compact.replace(",", "."))
    except InvalidOperation:  # pragma: no cover — the pattern admits only numbers
        raise ValueError(f"сумма «{text.strip()}» не число") from None
    kopecks = rubles * 100
    if kopecks != kopecks.to_integral_value():
        raise ValueError(f"сумма «{text.strip()}»: больше двух знаков после запятой")
    if kopecks <= 0:
        raise ValueError(f"сумма «{text.strip()}» должна быть больше нуля")
    return int(kopecks)


def parse_date(text: str) -> dt.date:
    """«01.12.2026» → a date; ValueError with a Russian sentence otherwise."""
    found = _DATE.fullmatch(text.strip())
    if not found:
        raise ValueError(f"дата «{text.strip()}» не в формате ДД.ММ.ГГГГ")
    day, month, year = (int(g) for g in found.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"даты «{text.strip()}» не бывает") from None


def decode(data: bytes) -> tuple[str, str]:
    """The text and its encoding: UTF-8 (with or without a BOM) when the bytes are valid UTF-8, otherwise
    code page 866 when the file says «Кодировка=DOS», otherwise windows-1251."""
    if data.startswith(b"\xef\xbb\xbf"):
        encoding, data = "utf-8", data[3:]
    else:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            encoding = "cp866" if _DOS_DECLARED.search(data) else "cp1251"
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        name = {"utf-8": "UTF-8", "cp1251": "windows-1251", "cp866": "DOS (866)"}[encoding]
        raise StatementError(line, f"текст не читается в кодировке {name}") from None


_REQUIRED = ("Номер", "Дата", "Сумма")
_SECTION_WORDS = {"СекцияРасчСчет", "КонецРасчСчет", "КонецДокумента", "КонецФайла"}


def parse_statement(data: bytes, account: str) -> Statement:
    """Read a whole 1C statement; ``account`` is the cooperative's settlement account (20 digits).

    Refuses (StatementError with the line) a file that is not a 1C statement, is cut short (no «КонецФайла»,
    a document without «КонецДокумента»), has a document without its number, date or sum, a sum or a date that
    does not parse — or is a statement of another account."""
    if len(data) > MAX_BYTES:
        raise StatementError(None, "файл больше 5 МБ — это не похоже на выписку")
    if not data.strip():
        raise StatementError(None, "файл пустой")
    text, encoding = decode(data)
    lines = text.splitlines()
    account = account.strip()

    first = next((i for i, raw in enumerate(lines) if raw.strip()), 0)
    if lines[first].strip().lstrip("\ufeff") != HEADER:
        raise StatementError(first + 1, f"это не выписка в формате 1С: файл должен начинаться строкой «{HEADER}»")

    header: dict[str, tuple[int, str]] = {}
    accounts: list[tuple[int, str]] = []
    documents: list[StatementDocument] = []
    current: dict[str, tuple[int, str]] | None = None  # the open document's fields
    doc_line = 0
    doc_kind = ""
    in_account_section = False
    ended_at = 0

    for index in range(first + 1, len(lines)):
        number = index + 1
        raw = lines[index].strip()
        if not raw:
            continue
        if ended_at:
            raise StatementError(number, f"после «КонецФайла» (строка {ended_at}) не должно быть текста")
        key, sep, value = raw.partition("=")
        key, value = key.strip(), value.strip()
        if not sep and key not in _SECTION_WORDS:
            raise StatementError(number, f"непонятная строка «{_short(raw)}»: ожидается «Ключ=Значение»")

        if key == "СекцияДокумент":
            if current is not None:
                raise StatementError(number, f"новый документ начинается, а документ со строки {doc_line} "
                                             "не закончен строкой «КонецДокумента»")
            if in_account_section:
                raise StatementError(number, "документ внутри «СекцияРасчСчет» — нет строки «КонецРасчСчет»")
            current, doc_line, doc_kind = {}, number, value
        elif key == "КонецДокумента":
            if current is None:
                raise StatementError(number, "«КонецДокумента» без «СекцияДокумент»")
            documents.append(_document(current, doc_line, doc_kind))
            current = None
        elif key == "СекцияРасчСчет":
            if current is not None:
                raise StatementError(number, f"документ со строки {doc_line} не закончен строкой «КонецДокумента»")
            in_account_section = True
        elif key == "КонецРасчСчет":
            if not in_account_section:
                raise StatementError(number, "«КонецРасчСчет» без «СекцияРасчСчет»")
            in_account_section = False
        elif key == "КонецФайла":
            if current is not None:
                raise StatementError(doc_line, "документ не закончен строкой «КонецДокумента»")
            ended_at = number
        elif current is not None:
            if key in current:
                raise StatementError(number, f"поле «{key}» повторяется в документе со строки {doc_line}")
            current[key] = (number, value)
        elif key == "РасчСчет":
            accounts.append((number, _SPACES.sub("", value)))
        elif not in_account_section:
            header.setdefault(key, (number, value))

    if current is not None:
        raise StatementError(doc_line, "документ не закончен строкой «КонецДокумента» — файл обрезан?")
    if not ended_at:
        raise StatementError(len(lines), "нет строки «КонецФайла» в конце — файл обрезан?")
    if accounts and account and all(acc != account for _, acc in accounts):
        line, other = accounts[0]
        raise StatementError(line, f"это выписка по счёту {other}, а расчётный счёт кооператива — {account}")

    start = _header_date(header, "ДатаНачала")
    end = _header_date(header, "ДатаКонца")
    incoming = [d for d in documents if d.recipient_account == account]
    outgoing = sum(1 for d in documents if d.recipient_account != account and d.payer_account == account)
    return Statement(encoding=encoding, accounts=tuple(acc for _, acc in accounts), incoming=incoming,
                     outgoing=outgoing, other=len(documents) - len(incoming) - outgoing, start=start, end=end,
                     documents=documents)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _header_date(header: dict[str, tuple[int, str]], key: str) -> dt.date | None:
    if key not in header or not header[key][1]:
        return None
    line, value = header[key]
    try:
        return parse_date(value)
    except ValueError as exc:
        raise StatementError(line, str(exc)) from None


def _document(fields: dict[str, tuple[int, str]], line: int, kind: str) -> StatementDocument:
    for key in _REQUIRED:
        if key not in fields or not fields[key][1]:
            raise StatementError(line, f"в документе нет поля «{key}»")

    def read(key: str, parse):
        at, value = fields[key]
        try:
            return parse(value)
        except ValueError as exc:
            raise StatementError(at, str(exc)) from None

    def text(*keys: str) -> str:
        for key in keys:
            if key in fields and fields[key][1]:
                return _norm(fields[key][1])
        return ""

    received = read("ДатаПоступило", parse_date) if text("ДатаПоступило") else None
    purpose = text("НазначениеПлатежа")
    if not purpose:  # some banks split a long purpose into numbered lines
        purpose = " ".join(_norm(fields[k][1]) for k in sorted(
            (k for k in fields if re.fullmatch(r"НазначениеПлатежа\d+", k)), key=lambda k: int(k[17:]))
            if fields[k][1])
    return StatementDocument(
        line=line, kind=kind, number=_norm(fields["Номер"][1]), date=read("Дата", parse_date),
        amount=read("Сумма", parse_amount), payer=text("Плательщик1", "Плательщик"),
        payer_account=_SPACES.sub("", text("ПлательщикСчет", "ПлательщикРасчСчет")),
        payer_inn=text("ПлательщикИНН"),
        recipient_account=_SPACES.sub("", text("ПолучательСчет", "ПолучательРасчСчет")),
        recipient_inn=text("ПолучательИНН"), purpose=purpose, received_on=received,
    )
