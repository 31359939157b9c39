"""Members at a given point of the journey, made over HTTP the way a browser would (for connection tests)."""

from __future__ import annotations

from portal.accounts.tables import Member
from portal.admissions import service as admissions
from portal.applications.tables import Application


async def admitted_member(client, email: str = "coop@example.org", inn: str = "7707083893",
                          application: dict | None = None) -> dict:
    """A member who joined the operator (signed, fees paid) and whom the council admitted; logged in on
    ``client`` (its cookies are also in ``member["cookies"]``), its key in ``member["key"]``."""
    from tests.factories import MemberKey as Key, signature_png
    from tests.integration.test_admissions import fees_invoice
    from tests.integration.test_join_and_sign import (
        fill_application, give_consent, post_signature, register, sign_page, signed_fields,
    )

    client.cookies.clear()
    key = Key()
    await register(client, key, email, inn)
    from tests.factories import ORG_APPLICATION

    await fill_application(client, {**ORG_APPLICATION, "email": email, **(application or {})})
    await give_consent(client, key)
    nonce, hashes = await sign_page(client)
    png = signature_png()
    r = await post_signature(client, signed_fields(key, nonce, hashes, png), png)
    assert r.status_code == 303, r.text
    member = await Member.select().where(Member.email == email).first()
    await fees_invoice(member, paid=True)
    application = await Application.select().where(Application.member == member["id"]).first()
    settings = client._transport.app.state.settings
    await admissions.admit(settings, application["id"], {"id": 0, "email": "staff@voskhod.example"})
    member["cookies"] = dict(client.cookies)
    member["key"] = key
    return member
