"""The published seal fingerprint on the docs site: the page «Проверка документов» shows it, and the site is
rebuilt when it changes (it is part of the build stamp)."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mkdocs.exceptions import PluginError

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from docs_hooks import seal as seal_hook  # noqa: E402
from portal import docs_site  # noqa: E402
from portal.documents.seal import ensure_seal_identity  # noqa: E402
from portal.pricing.tariff import ENV_VARIABLES, Tariff  # noqa: E402

OLD, OTHER = "ab" * 32, "cd" * 32


def _page(site: Path) -> str:
    """The page's text as a reader sees it (code blocks are highlighted: tags inside the command)."""
    page = (site / "verification" / "index.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_fingerprints_current_first(tmp_path):
    assert docs_site.seal_fingerprints((), tmp_path) == ()
    identity = ensure_seal_identity(tmp_path, "ПК «ВОСХОД»")
    current = identity.certificate_sha256
    assert docs_site.seal_fingerprints((f"{OLD.upper()}, {current}",), tmp_path) == (current, OLD)
    colons = ":".join(OLD[i:i + 2] for i in range(0, 64, 2))
    assert docs_site.seal_fingerprints((colons,), None) == (OLD,)
    env = {"PORTAL_SEAL_SHA256": OLD, "PORTAL_DATA_DIR": str(tmp_path)}
    assert docs_site.seal_fingerprints_from_env(env) == (current, OLD)
    assert seal_hook.fingerprints(env) == (current, OLD)
    assert seal_hook.fingerprints({**env, "PORTAL_DOCS_SEAL_EXACT": "1"}) == (OLD,)
    with pytest.raises(PluginError):
        seal_hook.fingerprints({"PORTAL_SEAL_SHA256": "not-a-fingerprint", "PORTAL_DATA_DIR": str(tmp_path)})


def test_hook_renders_the_fingerprints():
    text = "portal verify f.pdf --seal-sha256 {{ seal.sha256 }}\n\n<!-- seal:fingerprints -->\n"
    rendered = seal_hook.render(text, (OTHER, OLD))
    assert f"--seal-sha256 {OTHER}\n" in rendered
    assert f"`{OTHER}`" in rendered and f"- `{OLD}`" in rendered and "Прежние сертификаты" in rendered
    only = seal_hook.render(text, (OTHER,))
    assert "Прежние" not in only and f"`{OTHER}`" in only
    unknown = seal_hook.render(text, ())
    assert "--seal-sha256 ОТПЕЧАТОК" in unknown and "/verify" in unknown
    with pytest.raises(PluginError):
        seal_hook.render("{{ seal.nothing }}", (OTHER,))
    with pytest.raises(PluginError):
        seal_hook.render("<!-- seal:nothing -->", (OTHER,))


def test_stamp_includes_the_fingerprints():
    base = "http://127.0.0.1:8000"
    plain = docs_site.stamp(Tariff(), base)
    assert docs_site.stamp(Tariff(), base, seal_sha256=()) == plain
    with_one = docs_site.stamp(Tariff(), base, seal_sha256=(OTHER,))
    assert with_one != plain
    assert docs_site.stamp(Tariff(), base, seal_sha256=(OTHER,)) == with_one
    assert docs_site.stamp(Tariff(), base, seal_sha256=(OLD,)) != with_one
    assert docs_site.stamp(Tariff(), base, seal_sha256=(OTHER, OLD)) != with_one


def test_site_rebuilt_when_the_fingerprint_changes(tmp_path, monkeypatch):
    for name in (*ENV_VARIABLES, "PORTAL_BASE_URL", "PORT", "PORTAL_SEAL_SHA256"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "no-data"))
    builds = []
    real_build = docs_site.build

    def counting_build(*args, **kwargs):
        builds.append(kwargs.get("seal_sha256"))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(docs_site, "build", counting_build)
    site = tmp_path / "site"
    assert docs_site.ensure_built(site, seal_sha256=(OTHER,)) and len(builds) == 1
    page = _page(site)
    assert f"--seal-sha256 {OTHER}" in page and "Текущий отпечаток" in page and "Прежние" not in page
    assert docs_site.ensure_built(site, seal_sha256=(OTHER,)) and len(builds) == 1  # same: not rebuilt
    # The certificate is replaced: the new fingerprint first, the old one kept.
    assert docs_site.ensure_built(site, seal_sha256=(OLD, OTHER)) and len(builds) == 2
    page = _page(site)
    assert f"--seal-sha256 {OLD}" in page and "Прежние сертификаты" in page and OTHER in page
    # From the environment, the way `python -m portal.docs_site` builds.
    monkeypatch.setenv("PORTAL_SEAL_SHA256", f"{OLD},{OTHER}")
    assert docs_site.ensure_built(site) and len(builds) == 2


def test_docs_command_publishes_the_installed_portal_fingerprint(tmp_path):
    """`portal docs` on an installed portal: its own seal certificate and PORTAL_SEAL_SHA256."""
    data = tmp_path / "data"
    current = ensure_seal_identity(data, "ПК «ВОСХОД»").certificate_sha256
    site = tmp_path / "site"
    followed = {*ENV_VARIABLES, "PORTAL_BASE_URL", "PORT", "PORTAL_SEAL_SHA256"}
    env = {k: v for k, v in os.environ.items() if k not in followed} | {
        "PORTAL_SITE_DIR": str(site), "PORTAL_DATA_DIR": str(data), "PORTAL_SEAL_SHA256": OLD,
        "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([str(Path(sys.executable).with_name("portal")), "docs"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    page = _page(site)
    assert f"--seal-sha256 {current}" in page
    assert f"Прежние сертификаты печати — документы, запечатанные ими, проверяются и дальше:\n\n{OLD}" in page
    assert docs_site.built_stamp(site) == docs_site.stamp(Tariff(), "http://127.0.0.1:8000",
                                                          seal_sha256=(current, OLD))
