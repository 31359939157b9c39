"""Staff «Установки» (issue #11): each installation's progress and every regulation's PDF to download."""

from __future__ import annotations

import re

from portal.documents.tables import Document
from tests.integration.test_admissions import as_staff
from tests.integration.test_council_signing import COUNCIL, browser, join_council, provisioned, sign_package


async def test_staff_see_the_installation_and_download_every_regulation(client):
    setup = await provisioned(client, council=[COUNCIL[0]])  # one council member is enough in dev
    await as_staff(client)
    listing = await client.get("/staff/installations")
    assert listing.status_code == 200 and "совет подписывает положения" in listing.text
    detail = await client.get(f"/staff/installations/{setup['installation']}")
    assert "приглашён" in detail.text and "ещё никто не подписал" in detail.text

    person = setup["people"][0]
    async with browser(client) as jar:
        await join_council(jar, person)
        await sign_package(jar, person, seed=1)

    detail = await client.get(f"/staff/installations/{setup['installation']}")
    assert 'id="installation-status">кооператив действует<' in detail.text
    assert "подписано 4 из 4" in detail.text and person["email"] in detail.text
    links = re.findall(r'href="/staff/documents/(\d+)"', detail.text)
    assert len(links) == 4
    for doc_id in links:
        r = await client.get(f"/staff/documents/{doc_id}")
        doc = await Document.select(Document.pdf, Document.package).where(Document.id == int(doc_id)).first()
        assert r.status_code == 200 and r.content == bytes(doc["pdf"]) and doc["package"] == "regulations"
    console = await client.get("/staff/")
    assert "Кооперативы действуют: 1" in console.text

    # Not for members, nor on the cooperative's host.
    async with browser(client) as jar:
        assert (await jar.get("/staff/installations")).status_code == 404
