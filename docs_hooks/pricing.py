"""MkDocs hook: puts the tariff from :mod:`portal.pricing.tariff` into the documentation.

No price is typed by hand in Markdown. Pages use

* placeholders ``{{ pricing.NAME }}`` (see :func:`_values` for the names), and
* markers on a line of their own: ``<!-- pricing:prices -->`` (table of the base package and the
  prices above the quota) and ``<!-- pricing:examples -->`` (worked examples).

The tariff is the one the portal would use: ``tariff_from_env(os.environ)``, i.e. the defaults
of :class:`~portal.pricing.tariff.Tariff` unless ``PORTAL_TARIFF_*`` variables are set, so the
docs follow the settings. A bad variable or an unknown placeholder fails the build.

``site_url`` (canonical links, sitemap) follows ``PORTAL_BASE_URL`` the same way: the portal
serves the site under ``<PORTAL_BASE_URL>/docs/``. :mod:`portal.docs_site` builds with both set
from the portal's settings and rebuilds when they change.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from portal.docs_site import base_url_from_env, site_url  # noqa: E402
from portal.pricing.tariff import (  # noqa: E402
    Statement,
    Tariff,
    format_axon,
    format_rub,
    tariff_from_env,
    worked_examples,
)

PLACEHOLDER_RE = re.compile(r"\{\{\s*pricing\.([a-z_0-9]+)\s*\}\}")
MARKER_RE = re.compile(r"^[ \t]*<!--\s*pricing:([a-z_]+)\s*-->[ \t]*$", re.MULTILINE)

_tariff: Tariff | None = None


def _load_tariff() -> Tariff:
    try:
        return tariff_from_env(os.environ)
    except ValueError as exc:
        raise PluginError(f"Тариф для документации / tariff for the docs: {exc}") from exc


def on_config(config, **kwargs):
    global _tariff
    _tariff = _load_tariff()
    config["site_url"] = site_url(base_url_from_env(os.environ))
    return config


def _num(n: int) -> str:
    # Same grouping as babel (non-breaking space) for plain counts.
    return f"{n:,}".replace(",", "\xa0")


def _values(t: Tariff) -> dict[str, str]:
    return {
        "base_fee": format_rub(t.base_fee_kopecks),
        "quota_registrations": _num(t.quota_registrations),
        "quota_packages": _num(t.quota_packages),
        "registration_price_axon": format_axon(t.registration_price_axon),
        "registration_price_rub": format_rub(t.registration_price_kopecks),
        "package_price_axon": format_axon(t.package_price_axon),
        "package_price_rub": format_rub(t.package_price_kopecks),
        "axon_rate": format_rub(t.axon_rate_kopecks),
        "one_axon": format_axon(1),
    }


def _prices_table(t: Tariff) -> str:
    v = _values(t)
    return "\n".join(
        [
            "| Что входит | Объём в месяц | Цена |",
            "|---|---:|---:|",
            f"| Базовый пакет: хостинг, техническая поддержка, базовая квота | — | {v['base_fee']} в месяц |",
            f"| Регистрации пайщиков в базовой квоте | {v['quota_registrations']} | включены |",
            f"| Пакеты документов в базовой квоте | {v['quota_packages']} | включены |",
            f"| Регистрация пайщика сверх квоты | за каждую | {v['registration_price_axon']} = {v['registration_price_rub']} |",
            f"| Пакет документов сверх квоты | за каждый | {v['package_price_axon']} = {v['package_price_rub']} |",
            f"| Курс расчётов | — | {v['one_axon']} = {v['axon_rate']} |",
        ]
    )


def _example_title(t: Tariff, s: Statement) -> str:
    if s.within_quota:
        if s.registrations == t.quota_registrations and s.packages == t.quota_packages:
            return "Ровно на границе квоты"
        return "В пределах квоты"
    if s.registrations_extra <= 1 and s.packages_extra <= 1:
        return "Чуть выше квоты"
    return "Значительно выше квоты"


def _example(t: Tariff, number: int, s: Statement) -> str:
    title = _example_title(t, s)
    lines = [
        f"### Пример {number}. {title}",
        "",
        f"Использовано за месяц: регистраций пайщиков — {_num(s.registrations)}, "
        f"пакетов документов — {_num(s.packages)}.",
        "",
        "| | Регистрации пайщиков | Пакеты документов |",
        "|---|---:|---:|",
        f"| Использовано | {_num(s.registrations)} | {_num(s.packages)} |",
        f"| Покрыто базовой квотой | {_num(s.registrations_covered)} | {_num(s.packages_covered)} |",
        f"| Сверх квоты | {_num(s.registrations_extra)} | {_num(s.packages_extra)} |",
        f"| Стоимость сверх квоты, AXON | {format_axon(s.registrations_extra_axon)} | {format_axon(s.packages_extra_axon)} |",
        f"| Стоимость сверх квоты, ₽ | {format_rub(s.registrations_extra_kopecks)} | {format_rub(s.packages_extra_kopecks)} |",
        "",
    ]
    if s.within_quota:
        lines.append(
            f"Всё покрыто базовой квотой, доплат нет. **Итого за месяц: {format_rub(s.total_kopecks)}** "
            "— только базовый пакет."
        )
    else:
        lines.append(
            f"Базовый пакет {format_rub(s.base_fee_kopecks)} + сверх квоты {format_axon(s.extra_axon)} "
            f"({format_rub(s.extra_kopecks)}). **Итого за месяц: {format_rub(s.total_kopecks)}**."
        )
    return "\n".join(lines)


def _examples(t: Tariff) -> str:
    statements = worked_examples(t)
    parts = [_example(t, i, s) for i, s in enumerate(statements, start=1)]
    summary = [
        "### Сводка примеров",
        "",
        "| Пример | Регистрации | Пакеты | Сверх квоты, AXON | Итого за месяц |",
        "|---|---:|---:|---:|---:|",
    ]
    for i, s in enumerate(statements, start=1):
        summary.append(
            f"| {i}. {_example_title(t, s)} | {_num(s.registrations)} | {_num(s.packages)} "
            f"| {format_axon(s.extra_axon)} | {format_rub(s.total_kopecks)} |"
        )
    return "\n\n".join(parts + ["\n".join(summary)])


_MARKERS = {"prices": _prices_table, "examples": _examples}


def render(markdown: str, tariff: Tariff, where: str = "") -> str:
    """Replace the pricing placeholders and markers in one page's Markdown."""
    values = _values(tariff)

    def marker(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _MARKERS:
            raise PluginError(f"{where}: неизвестный маркер / unknown marker pricing:{name}")
        return "\n" + _MARKERS[name](tariff) + "\n"

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise PluginError(
                f"{where}: неизвестная подстановка / unknown placeholder pricing.{name}; "
                f"known: {', '.join(sorted(values))}"
            )
        return values[name]

    markdown = MARKER_RE.sub(marker, markdown)
    return PLACEHOLDER_RE.sub(placeholder, markdown)


def on_page_markdown(markdown, page, config, files, **kwargs):
    if "pricing" not in markdown:
        return markdown
    tariff = _tariff if _tariff is not None else _load_tariff()
    return render(markdown, tariff, where=page.file.src_uri)
