"""`portal verify` trusts only the operator's published seal certificate: a genuine document re-sealed with a
freshly made certificate is refused, with or without the operator's data directory."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.documents import render
from portal.documents.seal import certificate_sha256_in, ensure_seal_identity, seal_pdf
from portal.documents.templates import sample_context
from tests.unit.test_render import sign_document
from tests.unit.test_signing import scribble_png

PORTAL = str(Path(sys.executable).with_name("portal"))


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """The same signed document sealed by the operator and by a forger's own self-signed certificate."""
    operator_dir, forger_dir = tmp_path_factory.mktemp("operator"), tmp_path_factory.mktemp("forger")
    when = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
    document, record = sign_document("pd_consent", sample_context("individual"), os.urandom(32), scribble_png(), when)
    unsealed = render.render_signed_pdf("pd_consent", document, None, [record], "https://x/verify")
    genuine = seal_pdf(unsealed, ensure_seal_identity(operator_dir, "ПК «ВОСХОД»"))
    forged = seal_pdf(unsealed, ensure_seal_identity(forger_dir, "ПК «ВОСХОД»"))  # same name, other key
    paths = {}
    for name, content in (("genuine", genuine), ("forged", forged)):
        paths[name] = tmp_path_factory.mktemp(name) / f"{name}.pdf"
        paths[name].write_bytes(content)
    return paths, certificate_sha256_in(operator_dir)


def verify(path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PORTAL_DATA_DIR": "/nonexistent-data-dir", "PORTAL_SEAL_SHA256": "", **env}
    return subprocess.run([PORTAL, "verify", str(path), *args], capture_output=True, text=True, timeout=120,
                          env=environ)


def test_a_resealed_forgery_is_refused_with_the_published_fingerprint(documents):
    paths, fingerprint = documents
    r = verify(paths["forged"], "--seal-sha256", fingerprint)
    assert r.returncode == 1 and "НЕДЕЙСТВИТЕЛЕН" in r.stderr
    r = verify(paths["forged"], PORTAL_SEAL_SHA256=fingerprint)
    assert r.returncode == 1 and "НЕДЕЙСТВИТЕЛЕН" in r.stderr
    r = verify(paths["genuine"], PORTAL_SEAL_SHA256=fingerprint)
    assert r.returncode == 0 and "ДЕЙСТВИТЕЛЕН" in r.stdout and fingerprint in r.stdout


def test_without_a_known_fingerprint_nothing_is_called_valid(documents):
    paths, _ = documents
    for name in ("forged", "genuine"):
        r = verify(paths[name])
        assert r.returncode == 3 and "НЕ ПРОВЕРЕН" in r.stderr and "ДЕЙСТВИТЕЛЕН" not in r.stdout


def test_a_replaced_certificate_still_verifies_what_it_sealed(documents):
    """After the seal certificate is replaced, the published list holds the new one and the old ones."""
    paths, old = documents
    r = verify(paths["genuine"], PORTAL_SEAL_SHA256=f"{'ab' * 32}, {old}")
    assert r.returncode == 0
    r = verify(paths["genuine"], "--seal-sha256", "not-a-fingerprint")
    assert r.returncode == 2 and "64 шестнадцатеричных" in r.stderr
