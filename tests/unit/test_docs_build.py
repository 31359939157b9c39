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

from portal import docs_site  # noqa: E402
from portal.pricing.tariff import (  # noqa: E402
    ENV_VARIABLES, Tariff, compute, format_rub, tariff_from_env, worked_examples,
)

PAGES = ["connection", "pricing", "installation", "connect", "faq", "staff"]


def _default_env() -> dict[str, str]:
    """The environment without the settings the site follows: the defaults' tariff and base URL."""
    followed = {*ENV_VARIABLES, "PORTAL_BASE_URL", "PORT"}
    return {k: v for k, v in os.environ.items() if k not in followed} | {"NO_MKDOCS_2_WARNING": "1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """`mkdocs build --strict` as `make docs` runs it (the hook reads the environment itself)."""
    site_dir = tmp_path_factory.mktemp("site")
    env = _default_env()
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
    tariff = tariff_from_env(_default_env())  # what the hook used
    assert tariff == Tariff()
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


def test_canonical_links_follow_the_base_url(site: Path):
    page = (site / "pricing" / "index.html").read_text(encoding="utf-8")
    assert '<link rel="canonical" href="http://127.0.0.1:8000/docs/pricing/">' in page


def _copy_sources(root: Path) -> Path:
    for path in docs_site.sources():
        target = root / path.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return root


def test_stamp_follows_the_content_not_the_file_times(tmp_path):
    root = _copy_sources(tmp_path / "checkout")
    base = "http://127.0.0.1:8000"
    first = docs_site.stamp(Tariff(), base, root)
    assert first == docs_site.stamp(Tariff(), base, REPO_ROOT)  # paths are relative to the checkout
    for path in docs_site.sources(root):  # an old checkout, or one just cloned: same content, same stamp
        os.utime(path, (0, 0))
    assert docs_site.stamp(Tariff(), base, root) == first
    (root / "docs_hooks" / "__pycache__").mkdir()
    (root / "docs_hooks" / "__pycache__" / "pricing.cpython-311.pyc").write_bytes(b"generated")
    assert docs_site.stamp(Tariff(), base, root) == first  # what Python writes is not a source
    assert docs_site.stamp(Tariff(base_fee_kopecks=200_000), base, root) != first
    assert docs_site.stamp(Tariff(), "https://portal.example.ru", root) != first
    page = root / "docs" / "pricing.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nЕщё одна строка.\n", encoding="utf-8")
    assert docs_site.stamp(Tariff(), base, root) != first


def test_ensure_built_rebuilds_only_when_the_tariff_or_sources_differ(tmp_path, monkeypatch):
    """The portal's tariff comes from PORTAL_TARIFF_*: the docs are rebuilt when it differs from the built one."""
    for name in (*ENV_VARIABLES, "PORTAL_BASE_URL", "PORT"):
        monkeypatch.delenv(name, raising=False)
    builds = []
    real_build = docs_site.build

    def counting_build(*args, **kwargs):
        builds.append(kwargs.get("tariff"))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(docs_site, "build", counting_build)
    site = tmp_path / "site"
    pricing = site / "pricing" / "index.html"

    assert docs_site.ensure_built(site) and len(builds) == 1  # nothing there: built
    assert format_rub(150_000) in _text(pricing)
    assert docs_site.ensure_built(site) and len(builds) == 1  # same tariff: not rebuilt
    for path in site.rglob("*"):  # however old the built files are
        os.utime(path, (0, 0))
    assert docs_site.ensure_built(site) and len(builds) == 1

    monkeypatch.setenv("PORTAL_TARIFF_BASE_FEE", "2000")
    assert docs_site.ensure_built(site) and len(builds) == 2  # the portal now runs with another tariff
    assert builds[-1] == Tariff(base_fee_kopecks=200_000)
    page = _text(pricing)
    assert format_rub(200_000) in page and format_rub(150_000) not in page  # «2 000,00 ₽»
    assert docs_site.ensure_built(site) and len(builds) == 2

    settings_tariff = Tariff(base_fee_kopecks=200_000)  # what `portal serve` passes: its settings' tariff
    assert docs_site.ensure_built(site, tariff=settings_tariff) and len(builds) == 2
    assert docs_site.ensure_built(site, tariff=settings_tariff, base_url="https://portal.example.ru")
    assert len(builds) == 3
    assert 'href="https://portal.example.ru/docs/pricing/"' in pricing.read_text(encoding="utf-8")

    (site / docs_site.STAMP_NAME).write_text("a site built by hand\n")
    assert docs_site.ensure_built(site, tariff=settings_tariff, base_url="https://portal.example.ru")
    assert len(builds) == 4


def test_docs_command_builds_with_the_settings_tariff(tmp_path):
    """`portal docs` with PORTAL_TARIFF_BASE_FEE=2000 shows 2 000 ₽, as /pricing does."""
    portal = Path(sys.executable).with_name("portal")
    site = tmp_path / "site"
    env = {**_default_env(), "PORTAL_TARIFF_BASE_FEE": "2000", "PORTAL_SITE_DIR": str(site),
           "PORTAL_DATA_DIR": str(tmp_path / "data"), "PORTAL_BASE_URL": "https://portal.example.ru/"}
    result = subprocess.run([str(portal), "docs"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    page = _text(site / "pricing" / "index.html")
    assert format_rub(200_000) in page and "2\xa0000" in page
    assert 'href="https://portal.example.ru/docs/pricing/"' in page
    tariff = Tariff(base_fee_kopecks=200_000)
    assert docs_site.built_stamp(site) == docs_site.stamp(tariff, "https://portal.example.ru")
