"""The pricing module (SPEC §7). Every expected number below is computed by hand."""

from __future__ import annotations

import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from portal.pricing.tariff import (  # noqa: E402
    Statement,
    Tariff,
    compute,
    format_axon,
    format_rub,
    tariff_from_env,
    worked_examples,
)

NBSP = "\xa0"
DEFAULT = Tariff()


# --- the tariff --------------------------------------------------------------------------------


def test_default_tariff_matches_the_spec():
    assert DEFAULT.base_fee_kopecks == 150_000  # 1 500 ₽
    assert DEFAULT.quota_registrations == 50
    assert DEFAULT.quota_packages == 50
    assert DEFAULT.registration_price_axon == 2
    assert DEFAULT.package_price_axon == 1
    assert DEFAULT.axon_rate_kopecks == 1_000  # 1 AXON = 10 ₽


def test_tariff_is_frozen():
    with pytest.raises(FrozenInstanceError):
        DEFAULT.base_fee_kopecks = 1  # type: ignore[misc]


def test_axon_to_rubles_conversion():
    assert DEFAULT.axon_to_kopecks(1) == 1_000  # 10 ₽
    assert DEFAULT.axon_to_kopecks(3) == 3_000  # 30 ₽
    assert DEFAULT.axon_to_kopecks(0) == 0
    assert DEFAULT.registration_price_kopecks == 2_000  # 2 AXON = 20 ₽
    assert DEFAULT.package_price_kopecks == 1_000  # 1 AXON = 10 ₽
    t = Tariff(axon_rate_kopecks=1_250, registration_price_axon=3, package_price_axon=2)
    assert t.axon_to_kopecks(4) == 5_000  # 4 × 12,50 ₽ = 50 ₽
    assert t.registration_price_kopecks == 3_750  # 3 × 12,50 ₽ = 37,50 ₽
    assert t.package_price_kopecks == 2_500  # 2 × 12,50 ₽ = 25 ₽


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_fee_kopecks": -1},
        {"quota_registrations": -1},
        {"quota_packages": -5},
        {"registration_price_axon": -2},
        {"package_price_axon": -1},
        {"axon_rate_kopecks": 0},
        {"axon_rate_kopecks": -1000},
        {"base_fee_kopecks": 1500.0},
        {"quota_packages": True},
    ],
)
def test_tariff_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        Tariff(**kwargs)


# --- the formula -------------------------------------------------------------------------------


def test_zero_usage_costs_the_base_fee():
    s = compute(DEFAULT, 0, 0)
    assert isinstance(s, Statement)
    assert (s.registrations, s.packages) == (0, 0)
    assert (s.registrations_covered, s.packages_covered) == (0, 0)
    assert (s.registrations_extra, s.packages_extra) == (0, 0)
    assert s.extra_axon == 0
    assert s.extra_kopecks == 0
    assert s.base_fee_kopecks == 150_000
    assert s.total_kopecks == 150_000
    assert s.within_quota


def test_49_is_within_quota():
    s = compute(DEFAULT, 49, 49)
    assert (s.registrations_covered, s.packages_covered) == (49, 49)
    assert (s.registrations_extra, s.packages_extra) == (0, 0)
    assert s.total_kopecks == 150_000
    assert s.within_quota


def test_50_is_exactly_the_quota_and_costs_nothing_extra():
    s = compute(DEFAULT, 50, 50)
    assert (s.registrations_covered, s.packages_covered) == (50, 50)
    assert (s.registrations_extra, s.packages_extra) == (0, 0)
    assert (s.registrations_extra_axon, s.packages_extra_axon, s.extra_axon) == (0, 0, 0)
    assert s.total_kopecks == 150_000
    assert s.within_quota


def test_51_registrations_costs_one_extra_registration():
    s = compute(DEFAULT, 51, 50)
    assert s.registrations_covered == 50
    assert s.registrations_extra == 1
    assert s.packages_extra == 0
    assert s.registrations_extra_axon == 2
    assert s.registrations_extra_kopecks == 2_000  # 20 ₽
    assert s.extra_axon == 2
    assert s.extra_kopecks == 2_000
    assert s.total_kopecks == 152_000  # 1 500 + 20 = 1 520 ₽
    assert not s.within_quota


def test_51_packages_costs_one_extra_package():
    s = compute(DEFAULT, 50, 51)
    assert s.packages_covered == 50
    assert s.packages_extra == 1
    assert s.packages_extra_axon == 1
    assert s.packages_extra_kopecks == 1_000  # 10 ₽
    assert s.total_kopecks == 151_000  # 1 510 ₽


def test_51_and_51():
    s = compute(DEFAULT, 51, 51)
    assert s.extra_axon == 3  # 2 + 1
    assert s.extra_kopecks == 3_000
    assert s.total_kopecks == 153_000  # 1 530 ₽


def test_quotas_are_separate():
    # 10 registrations do not free up quota for 60 packages.
    s = compute(DEFAULT, 10, 60)
    assert s.registrations_covered == 10
    assert s.registrations_extra == 0
    assert s.packages_covered == 50
    assert s.packages_extra == 10
    assert s.packages_extra_axon == 10
    assert s.total_kopecks == 160_000  # 1 500 + 10 × 10 = 1 600 ₽


def test_well_above_quota():
    s = compute(DEFAULT, 200, 500)
    assert (s.registrations_extra, s.packages_extra) == (150, 450)
    assert s.registrations_extra_axon == 300  # 150 × 2
    assert s.packages_extra_axon == 450  # 450 × 1
    assert s.extra_axon == 750
    assert s.registrations_extra_kopecks == 300_000  # 3 000 ₽
    assert s.packages_extra_kopecks == 450_000  # 4 500 ₽
    assert s.extra_kopecks == 750_000  # 7 500 ₽
    assert s.total_kopecks == 900_000  # 9 000 ₽


def test_large_numbers_stay_exact():
    s = compute(DEFAULT, 1_000_050, 10_000_050)
    assert s.registrations_extra == 1_000_000
    assert s.packages_extra == 10_000_000
    assert s.extra_axon == 12_000_000  # 2 000 000 + 10 000 000
    assert s.extra_kopecks == 12_000_000_000  # 120 000 000 ₽
    assert s.total_kopecks == 12_000_150_000  # 120 001 500 ₽


def test_custom_tariff():
    t = Tariff(
        base_fee_kopecks=250_050,  # 2 500,50 ₽
        quota_registrations=10,
        quota_packages=0,
        registration_price_axon=5,
        package_price_axon=3,
        axon_rate_kopecks=1_250,  # 12,50 ₽
    )
    s = compute(t, 12, 4)
    assert s.registrations_covered == 10
    assert s.registrations_extra == 2
    assert s.packages_covered == 0
    assert s.packages_extra == 4
    assert s.registrations_extra_axon == 10  # 2 × 5
    assert s.packages_extra_axon == 12  # 4 × 3
    assert s.extra_axon == 22
    assert s.registrations_extra_kopecks == 12_500  # 10 × 12,50 = 125 ₽
    assert s.packages_extra_kopecks == 15_000  # 12 × 12,50 = 150 ₽
    assert s.extra_kopecks == 27_500  # 275 ₽
    assert s.total_kopecks == 277_550  # 2 500,50 + 275 = 2 775,50 ₽
    assert s.tariff is t


@pytest.mark.parametrize("registrations,packages", [(-1, 0), (0, -1), (-50, -50)])
def test_negative_usage_is_refused(registrations, packages):
    with pytest.raises(ValueError):
        compute(DEFAULT, registrations, packages)


def test_non_integer_usage_is_refused():
    with pytest.raises(ValueError):
        compute(DEFAULT, 1.5, 0)  # type: ignore[arg-type]


def test_statement_is_frozen():
    s = compute(DEFAULT, 1, 1)
    with pytest.raises(FrozenInstanceError):
        s.total_kopecks = 0  # type: ignore[misc]


def test_worked_examples_cover_the_quota_boundaries():
    examples = worked_examples(DEFAULT)
    assert [(s.registrations, s.packages) for s in examples] == [(30, 20), (50, 50), (51, 51), (200, 500)]
    assert [s.total_kopecks for s in examples] == [150_000, 150_000, 153_000, 900_000]
    assert [s.within_quota for s in examples] == [True, True, False, False]


def test_worked_examples_follow_the_tariff():
    t = Tariff(quota_registrations=100, quota_packages=10)
    examples = worked_examples(t)
    assert [(s.registrations, s.packages) for s in examples] == [(60, 4), (100, 10), (101, 11), (250, 460)]
    # (250 − 100) × 2 + (460 − 10) × 1 = 300 + 450 = 750 AXON = 7 500 ₽
    assert examples[-1].total_kopecks == 900_000


# --- formatting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kopecks,expected",
    [
        (400_000, "4\xa0000,00\xa0₽"),
        (150_000, "1\xa0500,00\xa0₽"),
        (153_000, "1\xa0530,00\xa0₽"),
        (1_000, "10,00\xa0₽"),
        (5, "0,05\xa0₽"),
        (0, "0,00\xa0₽"),
        (150_050, "1\xa0500,50\xa0₽"),
        (12_000_150_000, "120\xa0001\xa0500,00\xa0₽"),
    ],
)
def test_format_rub(kopecks, expected):
    assert format_rub(kopecks) == expected


def test_format_rub_refuses_floats():
    with pytest.raises(ValueError):
        format_rub(1500.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "n,expected",
    [(0, "0\xa0AXON"), (1, "1\xa0AXON"), (750, "750\xa0AXON"), (12_000_000, "12\xa0000\xa0000\xa0AXON")],
)
def test_format_axon(n, expected):
    assert format_axon(n) == expected


# --- environment -------------------------------------------------------------------------------


def test_empty_environment_gives_defaults():
    assert tariff_from_env({}) == Tariff()
    assert tariff_from_env({"UNRELATED": "x", "PORTAL_TARIFF_BASE_FEE": ""}) == Tariff()


def test_all_variables():
    t = tariff_from_env(
        {
            "PORTAL_TARIFF_BASE_FEE": "2000",
            "PORTAL_TARIFF_QUOTA_REGISTRATIONS": "100",
            "PORTAL_TARIFF_QUOTA_PACKAGES": " 75 ",
            "PORTAL_TARIFF_REGISTRATION_AXON": "3",
            "PORTAL_TARIFF_PACKAGE_AXON": "0",
            "PORTAL_TARIFF_AXON_RATE": "12.5",
        }
    )
    assert t == Tariff(
        base_fee_kopecks=200_000,
        quota_registrations=100,
        quota_packages=75,
        registration_price_axon=3,
        package_price_axon=0,
        axon_rate_kopecks=1_250,
    )


@pytest.mark.parametrize(
    "value,kopecks",
    [
        ("1500", 150_000),
        ("1500.50", 150_050),
        ("1500,5", 150_050),
        ("1 500,05", 150_005),
        ("0", 0),
        ("0.01", 1),
    ],
)
def test_base_fee_in_rubles(value, kopecks):
    assert tariff_from_env({"PORTAL_TARIFF_BASE_FEE": value}).base_fee_kopecks == kopecks


@pytest.mark.parametrize(
    "name,value",
    [
        ("PORTAL_TARIFF_BASE_FEE", "abc"),
        ("PORTAL_TARIFF_BASE_FEE", "-100"),
        ("PORTAL_TARIFF_BASE_FEE", "1500.555"),
        ("PORTAL_TARIFF_BASE_FEE", "1e3"),
        ("PORTAL_TARIFF_BASE_FEE", "NaN"),
        ("PORTAL_TARIFF_AXON_RATE", "0"),
        ("PORTAL_TARIFF_AXON_RATE", "ten"),
        ("PORTAL_TARIFF_QUOTA_REGISTRATIONS", "50.5"),
        ("PORTAL_TARIFF_QUOTA_REGISTRATIONS", "-1"),
        ("PORTAL_TARIFF_QUOTA_PACKAGES", "много"),
        ("PORTAL_TARIFF_REGISTRATION_AXON", "2.0"),
        ("PORTAL_TARIFF_PACKAGE_AXON", "１"),  # full-width digit
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ValueError) as excinfo:
        tariff_from_env({name: value})
    assert name in str(excinfo.value)
