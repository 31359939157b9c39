"""The pinned CDN scripts the browser tests serve locally: URLs, SRI check, cache (no network here)."""

from __future__ import annotations

import pytest

from portal.web import CDN, HTMX_SRI, HTMX_URL, SIGNATURE_PAD_SRI, SIGNATURE_PAD_URL
from tests.support import cdn
from tests.support.cdn import ASSETS, CdnAsset, CdnIntegrityError, sri_sha384

FAKE = CdnAsset("https://cdn.jsdelivr.net/npm/@scope/lib@1.2.3/dist/lib.min.js", sri_sha384(b"the real bytes"))


def test_the_portal_pins_every_cdn_script():
    assert {a.url: a.sri for a in ASSETS} == {HTMX_URL: HTMX_SRI, SIGNATURE_PAD_URL: SIGNATURE_PAD_SRI}
    assert [(a.package, a.version, a.path) for a in ASSETS] == [
        ("htmx.org", "2.0.11", "dist/htmx.min.js"),
        ("signature_pad", "5.1.4", "dist/signature_pad.umd.min.js"),
    ]
    for asset in ASSETS:
        assert asset.url.startswith(CDN + "/npm/")
        assert asset.sri.startswith("sha384-") and len(asset.sri) == len("sha384-") + 64


def test_package_version_and_path_from_the_url():
    assert (FAKE.package, FAKE.version, FAKE.path) == ("@scope/lib", "1.2.3", "dist/lib.min.js")
    assert "/" not in FAKE.cache_name
    with pytest.raises(ValueError, match="not a pinned"):
        CdnAsset("https://cdn.jsdelivr.net/npm/lib/dist/lib.min.js", FAKE.sri).version  # no version
    with pytest.raises(ValueError, match="not a pinned"):
        CdnAsset("https://unpkg.com/lib@1.2.3/dist/lib.min.js", FAKE.sri).package


def test_sri_sha384():
    # openssl dgst -sha384 -binary | openssl base64 -A, of the empty string
    assert sri_sha384(b"") == "sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l+9Ua0vFImLlb"


def test_a_wrong_hash_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(cdn, "npm_pack", lambda asset: b"tampered bytes")
    with pytest.raises(CdnIntegrityError, match="integrity mismatch"):
        cdn.fetch(FAKE, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing cached


def test_fetched_once_then_cached_and_a_bad_cache_is_fetched_again(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cdn, "npm_pack", lambda asset: calls.append(asset) or b"the real bytes")
    assert cdn.fetch(FAKE, tmp_path) == b"the real bytes"
    assert cdn.fetch(FAKE, tmp_path) == b"the real bytes"
    assert len(calls) == 1
    (tmp_path / FAKE.cache_name).write_bytes(b"changed on disk")
    assert cdn.fetch(FAKE, tmp_path) == b"the real bytes"
    assert len(calls) == 2
    assert cdn.fetch_all(tmp_path, (FAKE,)) == {FAKE.url: b"the real bytes"}
