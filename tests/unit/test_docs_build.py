"""The documentation site builds strictly and shows the tariff computed by the pricing module (J0, §7)."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from portal.pricing.tariff import compute, format_rub, tariff_from_env, worked_examples  # noqa: E402

PAGES = ["connection", "pricing", "installation", "connect", "faq", "staff"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return site_dir


def _text(path: Path) -> str:
    """Page HTML with entities decoded (babel's non-breaking spaces may be written as &nbsp;)."""
    return html.unescape(path.read_text(encoding="utf-8"))


def test_pages_exist(site: Path):
    assert (site / "index.html").is_file()
    for page in PAGES:
        assert (site / page / "index.html").is_file(), page


def test_pricing_page_shows_numbers_from_the_module(site: Path):
    tariff = tariff_from_env(os.environ)  # what the hook used
    page = _text(site / "pricing" / "index.html")
    assert "{{" not in page and "pricing:examples" not in page
    assert format_rub(tariff.base_fee_kopecks) in page
    assert format_rub(tariff.registration_price_kopecks) in page
    assert format_rub(tariff.package_price_kopecks) in page
    assert format_rub(tariff.axon_rate_kopecks) in page
    examples = worked_examples(tariff)
    assert len(examples) >= 4
    for statement in examples:
        assert format_rub(statement.total_kopecks) in page
    # One number that only exists above the quota: the total of one extra of each.
    just_above = compute(tariff, tariff.quota_registrations + 1, tariff.quota_packages + 1)
    assert format_rub(just_above.total_kopecks) in page
    assert "Стоимость использования" in page
    assert 'href="/pricing"' in page


def test_no_placeholder_left_anywhere(site: Path):
    for path in site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\{\{\s*pricing\.", text), path
        assert not re.search(r"<!--\s*pricing:", text), path


def test_no_google_fonts(site: Path):
    for path in site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in text, path
        assert "fonts.gstatic.com" not in text, path


def test_only_external_resource_is_htmx_with_sri(site: Path):
    external = set()
    for path in site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        external.update(re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"', text))
    # Canonical links point to the site itself; everything else fetched must be the pinned htmx.
    fetched = {url for url in external if not url.startswith("http://127.0.0.1:8000/docs/")}
    assert fetched == {"https://cdn.jsdelivr.net/npm/htmx.org@2.0.11/dist/htmx.min.js"}
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'integrity="sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"' in index
    assert 'name="htmx-config"' in index


def test_russian_search(site: Path):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert "ru" in index["config"]["lang"]
    text = " ".join(doc["title"] + " " + doc["text"] for doc in index["docs"])
    assert "Руководство по подключению" in text
    assert "пайщик" in text
    assert "ВОСХОД" in text


def test_connect_page_has_the_form_container(site: Path):
    page = (site / "connect" / "index.html").read_text(encoding="utf-8")
    match = re.search(r'<div id="connect-form"[^>]*>.*?</div>', page, re.S)
    assert match, "connect-form container missing"
    container = match.group(0)
    assert 'hx-get="/connect"' in container
    assert 'hx-trigger="load"' in container
    assert 'href="/connect"' in container


def test_navigation_order(site: Path):
    page = _text(site / "index.html")
    titles = [
        "Главная",
        "Руководство по подключению",
        "Стоимость",
        "Установка",
        "Заявка на подключение",
        "Вопросы и ответы",
        "Для сотрудников",
    ]
    nav = page[page.index('class="md-nav md-nav--primary"') :]
    positions = [nav.index(title) for title in titles]
    assert positions == sorted(positions)


def test_ensure_built_rebuilds_only_when_sources_changed(tmp_path):
    import os
    import time

    from portal import docs_site

    site = tmp_path / "site"
    assert docs_site.ensure_built(site)
    index = site / "index.html"
    first = index.stat().st_mtime
    assert docs_site.ensure_built(site) and index.stat().st_mtime == first  # up to date: not rebuilt
    old = time.time() - 3600
    os.utime(index, (old, old))  # the sources are now newer than the site
    assert docs_site.ensure_built(site) and index.stat().st_mtime > old
