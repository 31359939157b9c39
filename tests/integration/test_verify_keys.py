"""/verify online: each signature's key fingerprint, and whether the key registry knew it as the member's key at
signing time (registered, revoked before signing, unknown); the published fingerprint is shown on the page."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import os
import re

from portal.accounts.tables import Member, MemberKey
from portal.cooperatives.service import operator
from portal.documents import render
from portal.documents.seal import ensure_seal_identity, issue_cooperative_identity, seal_pdf
from portal.documents.signing import b64encode, key_fingerprint, private_key_from_seed, public_key_raw
from portal.documents.templates import sample_context
from tests.conftest import csrf_token
from tests.unit.test_render import sign_document
from tests.unit.test_signing import scribble_png

SIGNED_AT = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)


async def upload(client, content: bytes):
    token = await csrf_token(client)
    return await client.post("/verify", data={"_csrf_token": token},
                             files={"file": ("document.pdf", content, "application/pdf")})


def signature_block(page: str, n: int = 1) -> str:
    block = re.search(rf'<div class="signature-check" id="signature-{n}">.*?</div>', page, re.S).group(0)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", block)).split())


async def add_member(email: str) -> int:
    cooperative = (await operator())["id"]
    rows = await Member.insert(Member(cooperative=cooperative, email=email, email_confirmed_at=SIGNED_AT,
                                      created_at=SIGNED_AT - dt.timedelta(days=10))).returning(Member.id)
    return rows[0]["id"]


async def add_key(member_id: int, seed: bytes, created: dt.datetime, revoked: dt.datetime | None = None) -> str:
    raw = public_key_raw(private_key_from_seed(seed))
    await MemberKey.insert(MemberKey(member=member_id, public_key=b64encode(raw), fingerprint=key_fingerprint(raw),
                                     created_at=created, revoked_at=revoked))
    return key_fingerprint(raw)


def signed_pdf(settings, seed: bytes, email: str, identity=None, cooperative_inn: str | None = None) -> bytes:
    context = sample_context("individual")
    context["signer"] = {**context["signer"], "email": email}
    if cooperative_inn:  # a connected cooperative's own document
        context["cooperative"] = {**context["cooperative"], "inn": cooperative_inn}
    document, record = sign_document("pd_consent", context, seed, scribble_png(), SIGNED_AT)
    identity = identity or ensure_seal_identity(settings.data_dir, settings.operator.name_short)
    return seal_pdf(render.render_signed_pdf("pd_consent", document, None, [record], "http://x/verify"), identity)


async def test_registered_revoked_and_unknown_keys(client, settings):
    member = await add_member("anna@example.org")
    registered, revoked, unknown = os.urandom(32), os.urandom(32), os.urandom(32)
    registered_fp = await add_key(member, registered, SIGNED_AT - dt.timedelta(days=2))
    revoked_fp = await add_key(member, revoked, SIGNED_AT - dt.timedelta(days=5), SIGNED_AT - dt.timedelta(days=1))

    r = await upload(client, signed_pdf(settings, registered, "anna@example.org"))
    assert r.status_code == 200 and "Документ действителен" in r.text
    block = signature_block(r.text)
    assert f"Ключ: {registered_fp}" in block
    assert "По документу: ключ зарегистрирован за подписантом" in block
    assert "По реестру ключей портала: Ключ был зарегистрированным ключом пайщика anna@example.org" in block
    assert re.search(r'<li class="key-registry ok">', r.text)

    r = await upload(client, signed_pdf(settings, revoked, "anna@example.org"))
    block = signature_block(r.text)
    assert f"Ключ: {revoked_fp}" in block
    assert "был отозван 24.11.2026 12:00 МСК — до подписи" in block
    assert '<li class="key-registry bad">' in r.text

    r = await upload(client, signed_pdf(settings, unknown, "anna@example.org"))
    block = signature_block(r.text)
    assert "Ключ не зарегистрирован на портале" in block and '<li class="key-registry bad">' in r.text

    # A registered key, but of another member than the signature claims.
    r = await upload(client, signed_pdf(settings, registered, "boris@example.org"))
    assert "не за boris@example.org, а за другим пайщиком" in signature_block(r.text)


async def test_the_page_shows_the_published_fingerprints_and_accepts_cooperative_seals(client, settings):
    identity = ensure_seal_identity(settings.data_dir, settings.operator.name_short)
    r = await client.get("/verify")
    body = html.unescape(r.text)
    assert f'id="seal-sha256">{identity.certificate_sha256}<' in body
    assert f"portal verify ФАЙЛ.pdf --seal-sha256 {identity.certificate_sha256}" in body
    assert "сертификаты печати подключённых кооперативов" in body and 'href="/docs/verification/"' in body
    assert "Прежние сертификаты печати" not in body
    # After a replacement the earlier fingerprints (PORTAL_SEAL_SHA256) are listed after the current one.
    app = client._transport.app
    app.state.settings = dataclasses.replace(settings, seal_sha256=("ab" * 32, identity.certificate_sha256))
    body = html.unescape((await client.get("/verify")).text)
    assert f'id="seal-sha256">{identity.certificate_sha256}<' in body
    assert "Прежние сертификаты печати" in body and f'<code class="hash seal-sha256-earlier">{"ab" * 32}</code>' in body
    assert body.count(identity.certificate_sha256) == 2  # the fingerprint and the command, not listed as earlier
    app.state.settings = settings

    cooperative = issue_cooperative_identity(identity, settings.data_dir / "seal" / "cooperatives" / "7701234567",
                                             "ПК «Ромашка»", "7701234567")
    r = await upload(client, signed_pdf(settings, os.urandom(32), "anna@example.org", cooperative, "7701234567"))
    assert r.status_code == 200 and "Документ действителен" in r.text, r.text
    result = html.unescape(re.search(r'id="verify-result">.*?</section>', r.text, re.S).group(0))
    assert "Сертификат печати выдан сертификатом оператора" in result and identity.certificate_sha256 in result
