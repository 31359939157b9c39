"""J5 over HTTP through the pages: «Проверить сейчас» in the cabinet follows a real (local) DNS server from
«не делегирован» to «делегирован»; provisioning starts only when the connection is approved *and* the domain points
here — in either order — and the domain then answers with the cooperative's site."""

from __future__ import annotations

import re
from typing import Iterator

import pytest

from portal.connection import provision
from portal.connection.background import tick
from portal.connection.tables import Connection, ProvisionJob
from portal.cooperatives.tables import Cooperative
from portal.settings import Settings
from tests.conftest import make_settings, post_form
from tests.integration.test_admissions import as_member, as_staff
from tests.integration.test_connection_agreement import VALID, sign_current_draft
from tests.support.dns import LocalDns
from tests.support.members import admitted_member

SERVER_IP = "198.51.100.10"
DOMAIN = "rassvet-coop.example.ru"


@pytest.fixture
def local_dns() -> Iterator[LocalDns]:
    with LocalDns() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, local_dns: LocalDns) -> Settings:
    return make_settings(settings.data_dir, settings.database_url, PORTAL_DNS_RESOLVERS=local_dns.address,
                         PORTAL_SERVER_IP=SERVER_IP)


def dns_status(html: str) -> str:
    return re.search(r'id="dns-status"[^>]*>([^<]+)<', html).group(1)


async def signed_connection(client) -> dict:
    member = await admitted_member(client)
    assert (await post_form(client, "/cabinet/connection", {**VALID, "domain": DOMAIN})).status_code == 303
    assert (await sign_current_draft(client, member)).status_code == 303
    return member


async def test_check_now_follows_the_zone_and_provisioning_waits_for_approval(client, settings, local_dns):
    member = await signed_connection(client)
    page = await client.get("/cabinet/connection")
    assert f'id="server-ip">{SERVER_IP}<' in page.text and 'hx-trigger="every 10s"' in page.text

    r = await post_form(client, "/cabinet/connection/dns-check", {}, htmx=True)
    assert r.status_code == 200 and dns_status(r.text) == "не делегирован"
    assert "<html" not in r.text  # the block alone
    local_dns.set(DOMAIN, a=["203.0.113.7"])
    r = await post_form(client, "/cabinet/connection/dns-check", {})
    assert r.status_code == 303
    assert dns_status((await client.get("/cabinet/connection")).text) == "указывает на другой адрес: 203.0.113.7"
    local_dns.set(DOMAIN, a=[SERVER_IP])
    r = await post_form(client, "/cabinet/connection/dns-check", {}, htmx=True)
    assert dns_status(r.text) == "делегирован"
    assert not await ProvisionJob.exists()  # delegated, but not approved: nothing starts

    row = await Connection.select().where(Connection.status == "signed").first()
    await as_staff(client)
    staff_page = await client.get(f"/staff/connections/{row['id']}")
    assert dns_status(staff_page.text) == "делегирован"
    assert (await post_form(client, f"/staff/connections/{row['id']}/approve", {})).status_code == 303
    job = await provision.job_of(row["id"])
    assert job is not None and job["status"] == "queued"  # approved and delegated: provisioning starts

    await tick(settings)  # what the worker does
    job = await provision.job_of(row["id"])
    assert job["status"] == "done", job
    site = await client.get("/", headers={"Host": DOMAIN})
    assert site.status_code == 200 and "Потребительский кооператив «Рассвет»" in site.text
    as_member(client, member)
    page = await client.get("/cabinet/connection")
    assert 'id="site-ready"' in page.text and f"http://{DOMAIN}/" in page.text
    assert 'hx-trigger="every 10s"' not in page.text  # nothing left to wait for: no polling


async def test_approved_first_then_the_domain_delegated_by_the_background_check(client, settings, local_dns):
    await signed_connection(client)
    row = await Connection.select().where(Connection.status == "signed").first()
    await as_staff(client)
    assert (await post_form(client, f"/staff/connections/{row['id']}/approve", {})).status_code == 303
    await tick(settings)
    assert await provision.job_of(row["id"]) is None  # not delegated yet
    local_dns.set(DOMAIN, a=[SERVER_IP])
    await Connection.update({Connection.dns_checked_at: None}).where(Connection.id == row["id"])  # due now
    await tick(settings)
    job = await provision.job_of(row["id"])
    assert job is not None and job["status"] == "done"
    assert await Cooperative.exists().where(Cooperative.domain == DOMAIN)
    await tick(settings)  # again: nothing changes
    assert await ProvisionJob.count() == 1 and await Cooperative.count().where(Cooperative.domain == DOMAIN) == 1


async def test_a_job_that_failed_before_the_domain_pointed_here_is_retried_once_it_does(client, settings, local_dns):
    """The «Сервер» stage fails when the domain moved away in between; the next check that finds it delegated
    queues the job again (other failures wait for staff)."""
    from portal.connection.background import check_dns

    await signed_connection(client)
    row = await Connection.select().where(Connection.status == "signed").first()
    await as_staff(client)
    assert (await post_form(client, f"/staff/connections/{row['id']}/approve", {})).status_code == 303
    local_dns.set(DOMAIN, a=[SERVER_IP])
    await check_dns(settings, row["id"])
    job = await provision.job_of(row["id"])
    await ProvisionJob.update({ProvisionJob.status: "failed", ProvisionJob.stage: "server"}).where(
        ProvisionJob.id == job["id"])
    await check_dns(settings, row["id"])
    assert (await provision.job_of(row["id"]))["status"] == "queued"
    await ProvisionJob.update({ProvisionJob.status: "failed", ProvisionJob.stage: "components"}).where(
        ProvisionJob.id == job["id"])
    await check_dns(settings, row["id"])
    assert (await provision.job_of(row["id"]))["status"] == "failed"
