"""The payment QR code of ГОСТ Р 56042-2014 («Стандарты финансовых операций. Двумерные символы штрихового кода
для осуществления платежей физических лиц»), which Russian banks' apps scan.

Format: the header ``ST0001`` + encoding digit (``2`` — UTF-8) then ``|Key=Value`` pairs. Mandatory: Name,
PersonalAcc, BankName, BIC, CorrespAcc; then optional PayeeINN, KPP, Purpose, Sum (kopecks). The separator ``|``
may not occur in a value (removed here), nor may line breaks.
"""

from __future__ import annotations

from typing import Mapping

HEADER = "ST00012"  # ST0001 + 2 = UTF-8
REQUIRED = ("Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc")


def _clean(value: object) -> str:
    return " ".join(str(value).replace("|", " ").split())


def payment_payload(payee: Mapping[str, object], purpose: str, amount_kopecks: int) -> str:
    """The QR text for paying ``amount_kopecks`` to ``payee`` (a cooperative's requisites: name_full,
    settlement_account, bank_name, bik, corr_account, inn, kpp)."""
    if isinstance(amount_kopecks, bool) or not isinstance(amount_kopecks, int) or amount_kopecks <= 0:
        raise ValueError("the sum must be a positive integer of kopecks")
    fields = {
        "Name": payee["name_full"],
        "PersonalAcc": payee["settlement_account"],
        "BankName": payee["bank_name"],
        "BIC": payee["bik"],
        "CorrespAcc": payee["corr_account"],
        "PayeeINN": payee.get("inn", ""),
        "KPP": payee.get("kpp", ""),
        "Purpose": purpose,
        "Sum": str(amount_kopecks),
    }
    pairs = []
    for key, value in fields.items():
        text = _clean(value)
        if not text:
            if key in REQUIRED:
                raise ValueError(f"{key} is required in a payment QR code")
            continue
        pairs.append(f"{key}={text}")
    return "|".join([HEADER, *pairs])


def parse_payload(text: str) -> dict[str, str]:
    """The fields of a ГОСТ Р 56042 payload (the inverse of ``payment_payload``; for tests and checks)."""
    header, *pairs = text.split("|")
    if header != HEADER:
        raise ValueError(f"not a UTF-8 ГОСТ Р 56042 payload: {header!r}")
    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"not a Key=Value pair: {pair!r}")
        fields[key] = value
    return fields


def qr_svg(payload: str) -> str:
    """The QR code as inline SVG for the page (a phone's camera reads it off the screen)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(out, kind="svg", scale=4, border=2, xmldecl=False,
                                                     svgns=True, title="QR-код для оплаты")
    return out.getvalue().decode()
