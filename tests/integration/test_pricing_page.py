"""The /pricing calculator shows exactly what the pricing module computes."""

from __future__ import annotations

import re

import pytest

from portal.pricing.tariff import Tariff, compute, format_axon, format_rub


def cell(html: str, key: str) -> str:
    m = re.search(rf'data-k="{key}">(?:<strong>)?([^<]*)', html)
    assert m, key
    return m.group(1)


@pytest.mark.parametrize(("registrations", "packages"), [(0, 0), (50, 50), (51, 49), (120, 300)])
async def test_calculator_numbers_equal_the_module(client, registrations, packages):
    r = await client.get("/pricing", params={"registrations": registrations, "packages": packages})
    assert r.status_code == 200
    s = compute(Tariff(), registrations, packages)
    assert cell(r.text, "registrations_extra") == str(s.registrations_extra)
    assert cell(r.text, "packages_extra") == str(s.packages_extra)
    assert cell(r.text, "registrations_extra_axon") == format_axon(s.registrations_extra_axon)
    assert cell(r.text, "base") == format_rub(s.base_fee_kopecks)
    assert cell(r.text, "extra") == f"{format_axon(s.extra_axon)} = {format_rub(s.extra_kopecks)}"
    assert cell(r.text, "total") == format_rub(s.total_kopecks)


async def test_htmx_update_returns_only_the_breakdown(client):
    r = await client.get("/pricing", params={"registrations": "60", "packages": "50"}, headers={"HX-Request": "true"})
    assert r.text.lstrip().startswith('<section id="breakdown"')
    assert cell(r.text, "total") == format_rub(compute(Tariff(), 60, 50).total_kopecks)


async def test_bad_input_is_explained_in_russian(client):
    r = await client.get("/pricing", params={"registrations": "-3", "packages": "abc"})
    assert r.status_code == 422
    assert "Регистрации: Введите целое число не меньше нуля." in r.text
    assert "Пакеты документов: Введите целое число" in r.text
    assert 'value="-3"' in r.text and 'value="abc"' in r.text
