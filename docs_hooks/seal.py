"""MkDocs hook: puts the published fingerprint of the operator's seal certificate into the documentation.

Pages use

* the placeholder ``{{ seal.sha256 }}`` — the current fingerprint (SHA-256 of the certificate, 64 hex
  digits), or the word ``ОТПЕЧАТОК`` when the build knows none, and
* the marker ``<!-- seal:fingerprints -->`` on a line of its own — the current fingerprint and the
  earlier ones (replaced certificates that keep verifying what they sealed), or a note that the
  fingerprint is shown on the portal's /verify page.

The fingerprints are the ones the portal publishes (:func:`portal.docs_site.seal_fingerprints`): the
certificate in ``PORTAL_DATA_DIR/seal`` first, then ``PORTAL_SEAL_SHA256``. :mod:`portal.docs_site`
builds with the exact list (``PORTAL_DOCS_SEAL_EXACT``) from the settings and rebuilds when it changes.
A malformed ``PORTAL_SEAL_SHA256`` or an unknown placeholder fails the build.
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

from portal.docs_site import seal_fingerprints_from_env  # noqa: E402
from portal.settings import SettingsError, parse_seal_fingerprints  # noqa: E402

PLACEHOLDER_RE = re.compile(r"\{\{\s*seal\.([a-z_0-9]+)\s*\}\}")
MARKER_RE = re.compile(r"^[ \t]*<!--\s*seal:([a-z_]+)\s*-->[ \t]*$", re.MULTILINE)
UNKNOWN = "ОТПЕЧАТОК"


def fingerprints(environ=os.environ) -> tuple[str, ...]:
    try:
        if environ.get("PORTAL_DOCS_SEAL_EXACT"):
            return parse_seal_fingerprints(environ.get("PORTAL_SEAL_SHA256", ""))
        return seal_fingerprints_from_env(environ)
    except (SettingsError, ValueError) as exc:
        raise PluginError(f"Отпечаток печати для документации / seal fingerprint for the docs: {exc}") from exc


def _list(published: tuple[str, ...]) -> str:
    if not published:
        return ("!!! note \"Отпечаток публикует портал\"\n"
                "    Эта копия документации собрана без сертификата печати оператора. Действующий отпечаток "
                "показан на странице [/verify](/verify) портала, выдавшего документ.")
    lines = [f"Текущий отпечаток сертификата печати оператора (SHA-256):\n\n`{published[0]}`"]
    if published[1:]:
        lines.append("\nПрежние сертификаты печати — документы, запечатанные ими, проверяются и дальше:\n")
        lines += [f"- `{earlier}`" for earlier in published[1:]]
    return "\n".join(lines)


def render(markdown: str, published: tuple[str, ...], where: str = "") -> str:
    """Replace the seal placeholders and markers in one page's Markdown."""
    values = {"sha256": published[0] if published else UNKNOWN,
              "sha256_all": ",".join(published) if published else UNKNOWN}

    def marker(match: re.Match[str]) -> str:
        if match.group(1) != "fingerprints":
            raise PluginError(f"{where}: неизвестный маркер / unknown marker seal:{match.group(1)}")
        return "\n" + _list(published) + "\n"

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise PluginError(f"{where}: неизвестная подстановка / unknown placeholder seal.{name}; "
                              f"known: {', '.join(sorted(values))}")
        return values[name]

    return PLACEHOLDER_RE.sub(placeholder, MARKER_RE.sub(marker, markdown))


_published: tuple[str, ...] | None = None


def on_config(config, **kwargs):
    global _published
    _published = fingerprints()
    return config


def on_page_markdown(markdown, page, config, files, **kwargs):
    if "seal" not in markdown:
        return markdown
    published = _published if _published is not None else fingerprints()
    return render(markdown, published, where=page.file.src_uri)
