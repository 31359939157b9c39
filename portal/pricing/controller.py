from __future__ import annotations

from litestar import Request, get

from portal.pricing.tariff import compute, format_axon, format_rub
from portal.web import render

MAX_COUNT = 1_000_000


def parse_count(raw: str | None, default: int) -> tuple[str, int | None, str | None]:
    """(what was typed, the number or None, a Russian error or None)."""
    if raw is None:
        return str(default), default, None
    text = raw.strip().replace(" ", "").replace("\u00a0", "")
    if text == "":
        return raw, 0, None
    if not (text.isascii() and text.isdigit()):
        return raw, None, "Введите целое число не меньше нуля."
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_COUNT)) or int(digits) > MAX_COUNT:  # no int() of a 5 000-digit string
        return raw[:20], None, f"Слишком много: не больше {MAX_COUNT:,}".replace(",", " ") + " в месяц."
    return raw, int(digits), None


@get("/pricing")
async def pricing(request: Request) -> object:
    tariff = request.app.state.settings.tariff
    reg_raw, registrations, reg_error = parse_count(request.query_params.get("registrations"), 40)
    pkg_raw, packages, pkg_error = parse_count(request.query_params.get("packages"), 60)
    statement = None
    if registrations is not None and packages is not None:
        statement = compute(tariff, registrations, packages)
    context = {
        "tariff": tariff,
        "values": {"registrations": reg_raw, "packages": pkg_raw},
        "errors": {"registrations": reg_error, "packages": pkg_error},
        "s": statement,
        "rub": format_rub,
        "axon": format_axon,
    }
    status = 200 if statement else 422
    return render(request, "pricing/calculator.html", context, block="breakdown", status_code=status)
