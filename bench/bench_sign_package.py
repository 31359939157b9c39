"""Server time to sign the joining package vs WeasyPrint alone rendering the same documents.

    .venv/bin/python -P bench/bench_sign_package.py [-n 5]

Signing = what POST /cabinet/sign does on the server for the package (the application and the user agreement;
the personal-data consent is signed by its own action before, not measured): PNG validation, preparing the
canonical documents, the Ed25519 checks, rendering the signed PDF/A-3b with attachments and the operator seal,
and the database transaction (SQLite in a temporary data dir). Goal: at most 1.5× the plain render.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal import db  # noqa: E402
from portal.accounts.tables import Member, MemberKey  # noqa: E402
from portal.applications import service  # noqa: E402
from portal.applications.tables import Application  # noqa: E402
from portal.clock import now  # noqa: E402
from portal.cooperatives.service import ensure_operator, operator  # noqa: E402
from portal.documents import render  # noqa: E402
from portal.documents.signing import key_fingerprint  # noqa: E402
from portal.documents.tables import Document, Signature  # noqa: E402
from portal.settings import load_settings  # noqa: E402
from tests.factories import ORG_APPLICATION, MemberKey as Key, signature_png  # noqa: E402


async def main(n: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-sign-"))
    settings = load_settings({"PORTAL_DATA_DIR": str(data_dir), "PORTAL_SECRET_KEY": "bench"})
    db.configure_database(settings)
    await db.migrate()
    await ensure_operator(settings.operator)
    op = await operator()
    key = Key()
    rows = await Member.insert(Member(cooperative=op["id"], email="bench@example.org", email_confirmed_at=now(),
                                      created_at=now())).returning(Member.id)
    member = await Member.select().where(Member.id == rows[0]["id"]).first()
    await MemberKey.insert(MemberKey(member=member["id"], public_key=key.public_b64,
                                     fingerprint=key_fingerprint(key.public_raw), created_at=now()))
    from portal.accounts import offer
    from portal.origin import SYSTEM

    await offer.record_acceptance(member["id"], op, member["email"], offer.current_offer(), SYSTEM)
    application = await service.get_or_create(member)
    await service.save_draft(application, "organization", ORG_APPLICATION)
    png = signature_png()
    image_hash = hashlib.sha256(png).hexdigest()
    render.warm_up()

    plain, signing = [], []
    for i in range(n + 1):  # the first round warms up and is not counted
        await Application.update({Application.status: "draft"}).where(Application.id == application["id"])
        await Signature.delete(force=True)
        await Document.delete(force=True)
        app_row = await service.get_or_create(member)
        package = await service.prepare(member, app_row)
        # The personal-data consent is signed on its own before the package (not measured).
        nonce = await service.new_signing_nonce(app_row, service.today_moscow())
        await service.sign_consent(settings, member, await service.get_or_create(member), nonce=nonce, consent=True,
                                   image_png=png, hash=package.consent.hash,
                                   signature=key.sign(f"coopdoc:v1:{package.consent.hash}:{image_hash}"))
        t0 = time.perf_counter()
        for doc in package.documents:
            render.render_pdf(doc.template_id, package.context)
        t1 = time.perf_counter()
        nonce = await service.new_signing_nonce(app_row, service.today_moscow())
        app_row = await service.get_or_create(member)
        hashes = {d.template_id: d.hash for d in package.documents}
        sigs = {t: key.sign(f"coopdoc:v1:{h}:{image_hash}") for t, h in hashes.items()}
        t2 = time.perf_counter()
        await service.sign_package(settings, member, app_row, nonce=nonce, image_png=png, hashes=hashes,
                                   signatures=sigs)
        t3 = time.perf_counter()
        if i:
            plain.append(t1 - t0)
            signing.append(t3 - t2)
    p, s = statistics.median(plain), statistics.median(signing)
    print(f"WeasyPrint alone, {len(package.documents)} documents:      {p * 1000:7.0f} ms (median of {n})")
    print(f"Server signing of the package:      {s * 1000:7.0f} ms")
    print(f"ratio signing / render:             {s / p:7.2f}  (goal ≤ 1.50)")
    from bench.bench_render import print_breakdown, scribble

    print_breakdown(package.context, os.urandom(32), scribble(), max(n, 3))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5)
    asyncio.run(main(parser.parse_args().n))
