"""The monthly amount a connected cooperative pays (SPEC §7).

This is the only place where the price is computed. The documentation page (an MkDocs hook),
the calculator at ``/pricing``, the cooperative's monthly statement and the staff bills all call
:func:`compute` and show money through :func:`format_rub`.

Money is integer kopecks everywhere; AXON amounts are integers.

Formula::

    extra_registrations = max(0, registrations - quota_registrations)
    extra_packages      = max(0, packages - quota_packages)
    extra_axon          = extra_registrations * registration_price_axon
                        + extra_packages * package_price_axon
    total_kopecks       = base_fee_kopecks + extra_axon * axon_rate_kopecks
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from decimal import Decimal
from typing import Mapping

from babel import Locale
from babel.numbers import format_currency, format_decimal

__all__ = [
    "ENV_VARIABLES",
    "Statement",
    "Tariff",
    "compute",
    "format_axon",
    "format_rub",
    "parse_rubles",
    "tariff_from_env",
    "worked_examples",
]

LOCALE = Locale.parse("ru_RU")  # parsed once: babel would parse the string on every call
_RUBLES_RE = re.compile(r"([0-9]+)(?:[.,]([0-9]{1,2}))?")

#: Environment variables read by :func:`tariff_from_env`, with the Tariff field each one sets.
ENV_VARIABLES: dict[str, str] = {
    "PORTAL_TARIFF_BASE_FEE": "base_fee_kopecks",  # rubles, e.g. "1500" or "1500.50"
    "PORTAL_TARIFF_QUOTA_REGISTRATIONS": "quota_registrations",
    "PORTAL_TARIFF_QUOTA_PACKAGES": "quota_packages",
    "PORTAL_TARIFF_REGISTRATION_AXON": "registration_price_axon",
    "PORTAL_TARIFF_PACKAGE_AXON": "package_price_axon",
    "PORTAL_TARIFF_AXON_RATE": "axon_rate_kopecks",  # rubles per 1 AXON, e.g. "10"
}


def _check_int(name: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: ожидается целое число / expected an integer, got {value!r}")
    if value < 0 or (positive and value == 0):
        need = "больше нуля / must be positive" if positive else "не может быть отрицательным / must not be negative"
        raise ValueError(f"{name}: {need}, got {value!r}")


@dataclass(frozen=True)
class Tariff:
    """Settings of the tariff. Money in kopecks, prices above the quota in AXON."""

    base_fee_kopecks: int = 150_000  # 1 500 ₽ a month: hosting, support, base quota
    quota_registrations: int = 50  # member registrations a month included in the base fee
    quota_packages: int = 50  # document packages a month included in the base fee
    registration_price_axon: int = 2  # each registration above the quota
    package_price_axon: int = 1  # each document package above the quota
    axon_rate_kopecks: int = 1_000  # 1 AXON = 10 ₽

    def __post_init__(self) -> None:
        _check_int("base_fee_kopecks", self.base_fee_kopecks)
        _check_int("quota_registrations", self.quota_registrations)
        _check_int("quota_packages", self.quota_packages)
        _check_int("registration_price_axon", self.registration_price_axon)
        _check_int("package_price_axon", self.package_price_axon)
        _check_int("axon_rate_kopecks", self.axon_rate_kopecks, positive=True)

    def axon_to_kopecks(self, axon: int) -> int:
        """Convert an AXON amount to kopecks at this tariff's rate."""
        _check_int("axon", axon)
        return axon * self.axon_rate_kopecks

    @property
    def registration_price_kopecks(self) -> int:
        """Price of one registration above the quota, in kopecks."""
        return self.registration_price_axon * self.axon_rate_kopecks

    @property
    def package_price_kopecks(self) -> int:
        """Price of one document package above the quota, in kopecks."""
        return self.package_price_axon * self.axon_rate_kopecks


@dataclass(frozen=True)
class Statement:
    """What a cooperative owes for one month: usage, what the quota covered, extras and total."""

    tariff: Tariff
    registrations: int  # member registrations used this month
    packages: int  # document packages used this month
    registrations_covered: int  # covered by the base quota
    packages_covered: int
    registrations_extra: int  # above the quota
    packages_extra: int
    registrations_extra_axon: int  # cost of the extras in AXON
    packages_extra_axon: int
    extra_axon: int  # registrations_extra_axon + packages_extra_axon
    registrations_extra_kopecks: int  # cost of the extras in kopecks
    packages_extra_kopecks: int
    extra_kopecks: int  # registrations_extra_kopecks + packages_extra_kopecks
    base_fee_kopecks: int
    total_kopecks: int  # base_fee_kopecks + extra_kopecks

    @property
    def within_quota(self) -> bool:
        """True when nothing above the quota was used (the total is the base fee)."""
        return self.registrations_extra == 0 and self.packages_extra == 0


def compute(tariff: Tariff, registrations: int, packages: int) -> Statement:
    """The monthly statement for the given usage. Negative usage raises ValueError."""
    _check_int("registrations", registrations)
    _check_int("packages", packages)
    reg_covered = min(registrations, tariff.quota_registrations)
    pkg_covered = min(packages, tariff.quota_packages)
    reg_extra = registrations - reg_covered
    pkg_extra = packages - pkg_covered
    reg_axon = reg_extra * tariff.registration_price_axon
    pkg_axon = pkg_extra * tariff.package_price_axon
    reg_kopecks = reg_axon * tariff.axon_rate_kopecks
    pkg_kopecks = pkg_axon * tariff.axon_rate_kopecks
    extra_kopecks = reg_kopecks + pkg_kopecks
    return Statement(
        tariff=tariff,
        registrations=registrations,
        packages=packages,
        registrations_covered=reg_covered,
        packages_covered=pkg_covered,
        registrations_extra=reg_extra,
        packages_extra=pkg_extra,
        registrations_extra_axon=reg_axon,
        packages_extra_axon=pkg_axon,
        extra_axon=reg_axon + pkg_axon,
        registrations_extra_kopecks=reg_kopecks,
        packages_extra_kopecks=pkg_kopecks,
        extra_kopecks=extra_kopecks,
        base_fee_kopecks=tariff.base_fee_kopecks,
        total_kopecks=tariff.base_fee_kopecks + extra_kopecks,
    )


def worked_examples(tariff: Tariff) -> list[Statement]:
    """Representative months for the documentation, derived from the tariff's quotas.

    In order: well within the quota, exactly at the quota, just above it (one of each over),
    well above it.
    """
    qr, qp = tariff.quota_registrations, tariff.quota_packages
    return [
        compute(tariff, qr * 3 // 5, qp * 2 // 5),
        compute(tariff, qr, qp),
        compute(tariff, qr + 1, qp + 1),
        compute(tariff, qr + 150, qp + 450),
    ]


def format_rub(kopecks: int) -> str:
    """Russian money format by babel, e.g. 400000 → '4\\xa0000,00\\xa0₽' (non-breaking spaces)."""
    if isinstance(kopecks, bool) or not isinstance(kopecks, int):
        raise ValueError(f"kopecks: ожидается целое число / expected an integer, got {kopecks!r}")
    return format_currency(Decimal(kopecks).scaleb(-2), "RUB", locale=LOCALE)


def format_axon(n: int) -> str:
    """AXON amount in Russian number format, e.g. 1500 → '1\\xa0500\\xa0AXON'."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"AXON: ожидается целое число / expected an integer, got {n!r}")
    return f"{format_decimal(n, locale=LOCALE)}\xa0AXON"


def parse_rubles(name: str, value: str) -> int:
    """Rubles as typed by an operator ("1500", "1500.50", "1 500,50") → kopecks.

    Raises ValueError naming the variable for anything that is not a non-negative amount
    with at most two decimal places.
    """
    text = value.strip().replace("\xa0", "").replace(" ", "")
    if text.startswith("-"):
        raise ValueError(f"{name}: сумма не может быть отрицательной / must not be negative, got {value!r}")
    match = _RUBLES_RE.fullmatch(text)
    if match is None:
        if re.fullmatch(r"[0-9]+[.,][0-9]{3,}", text):
            raise ValueError(f"{name}: не больше двух знаков после запятой / at most 2 decimal places, got {value!r}")
        raise ValueError(f"{name}: ожидается сумма в рублях, например 1500 или 1500.50 / expected rubles, got {value!r}")
    rubles, fraction = match.group(1), (match.group(2) or "")
    return int(rubles) * 100 + int(fraction.ljust(2, "0"))


def _parse_count(name: str, value: str) -> int:
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"{name}: ожидается целое неотрицательное число / expected a non-negative integer, got {value!r}")
    return int(text)


def tariff_from_env(environ: Mapping[str, str]) -> Tariff:
    """The tariff from optional PORTAL_TARIFF_* variables; unset or empty ones keep the defaults."""
    values: dict[str, int] = {}
    for name, field_name in ENV_VARIABLES.items():
        raw = environ.get(name)
        if raw is None or not raw.strip():
            continue
        if field_name in ("base_fee_kopecks", "axon_rate_kopecks"):
            values[field_name] = parse_rubles(name, raw)
        else:
            values[field_name] = _parse_count(name, raw)
    if values.get("axon_rate_kopecks", 1) == 0:
        raise ValueError("PORTAL_TARIFF_AXON_RATE: курс AXON должен быть больше нуля / must be positive, got '0'")
    return Tariff(**values)
