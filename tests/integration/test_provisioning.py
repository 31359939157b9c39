"""Provisioning (issue #10 «Provisioning»), on SQLite and on PostgreSQL: a job per approved hosted connection, run
stage by stage to the cooperative's own site on its host; idempotent, failures shown and retried without re-running
done stages, the command provisioner with real subprocesses, one claimer per job among concurrent ones (also in
separate processes), and a job taken again when its process died (the lease ran out)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from portal.audit.tables import AuditEvent
from portal.clock import now
from portal.connection import provision
from portal.connection.forms import clean_domain
from portal.connection.tables import Connection, ProvisionJob
from portal.cooperatives.tables import Cooperative
from portal.documents.seal import INN_LE_OID
from portal.mail.service import unpack_body
from portal.mail.tables import OutboxMessage
from tests.conftest import post_form
from tests.support.members import admitted_member

INN = "7707083893"
FEES = {"fee_entrance_org": 150_000, "fee_share_org": 500_050, "fee_entrance_ind": 20_000, "fee_share_ind": 60_000}
DESCRIPTION = "Закупки фермерских продуктов для пайщиков"


async def make_connection(member: dict, domain: str = "rassvet.localhost", **values) -> int:
    t = now()
    row = {"member": member["id"], "operator": member["cooperative"], "status": "approved", "hosting": "hosted",
           "dns_status": "delegated", "dns_addresses": "127.0.0.1", "domain": domain, "description": DESCRIPTION,
           **FEES, "created_at": t, "updated_at": t, **values}
    rows = await Connection.insert(Connection(**row)).returning(Connection.id)
    return rows[0]["id"]


async def mails_to(email: str) -> list[dict]:
    return await OutboxMessage.select().where(OutboxMessage.to_addr == email).order_by(OutboxMessage.id)


def settings_of(client):
    return client._transport.app.state.settings


def stage_states(job: dict) -> dict:
    return {key: (job["stages"].get(key) or {}).get("status") for key, _ in provision.STAGES}


def loaded(job: dict) -> dict:
    if isinstance(job["stages"], str):
        job = {**job, "stages": json.loads(job["stages"])}
    return job


async def test_enqueue_once_per_connection_and_only_hosted_approved(client):
    member = await admitted_member(client)
    settings = settings_of(client)
    hosted = await make_connection(member)
    jobs = await asyncio.gather(*(provision.enqueue(settings, hosted) for _ in range(6)))
    assert len({job["id"] for job in jobs}) == 1
    assert jobs[0]["status"] == "queued" and jobs[0]["attempts"] == 0
    assert await ProvisionJob.count().where(ProvisionJob.connection == hosted) == 1
    again = await provision.enqueue(settings, hosted)
    assert again["id"] == jobs[0]["id"]
    assert (await provision.job_of(hosted))["id"] == jobs[0]["id"]

    self_hosted = await make_connection(member, "own.localhost", hosting="self")
    signed = await make_connection(member, "later.localhost", status="signed")
    assert await provision.enqueue(settings, self_hosted) is None
    assert await provision.enqueue(settings, signed) is None
    assert await ProvisionJob.count() == 1
    with pytest.raises(provision.ProvisionError):
        await provision.enqueue(settings, 999_999)


async def test_default_provisioning_makes_the_cooperative_site_once(client):
    member = await admitted_member(client, email="chair@rassvet.example")
    settings = settings_of(client)
    connection_id = await make_connection(member)
    job = await provision.enqueue(settings, connection_id)
    assert provision.job_view(job)["provision"]["progress"] == "0 из 4"

    assert await provision.run_pending(settings, "worker-a") == 1
    job = loaded(await provision.job_of(connection_id))
    assert job["status"] == "done", job
    assert job["attempts"] == 1 and job["error"] == "" and job["finished_at"] is not None
    assert job["lease_until"] is None and job["claimed_by"] == "worker-a"
    assert stage_states(job) == {"server": "done", "components": "done", "databases": "done",
                                 "finalisation": "done"}
    for key, _label in provision.STAGES:
        record = job["stages"][key]
        assert record["output"] and record["started_at"] <= record["finished_at"]
    view = provision.job_view(job)["provision"]
    assert view["progress"] == "4 из 4" and not view["active"]
    assert [s["state_label"] for s in view["stages"]] == ["готово"] * 4

    # The cooperative's own row, from the signed joining application and the agreement.
    cooperatives = await Cooperative.select().where(Cooperative.is_operator == False)  # noqa: E712
    assert len(cooperatives) == 1
    coop = cooperatives[0]
    assert coop["name_full"] == "Потребительский кооператив «Рассвет»" and coop["name_short"] == "ПК «Рассвет»"
    assert (coop["inn"], coop["kpp"], coop["ogrn"]) == (INN, "773601001", "1027700132195")
    assert coop["bik"] == "044525225" and coop["settlement_account"] == "40702810938000000001"
    assert coop["email"] == "chair@rassvet.example" and coop["city"] == "г. Москва"
    assert {k: coop[k] for k in FEES} == FEES
    assert coop["domain"] == "rassvet.localhost" and coop["description"] == DESCRIPTION
    assert coop["status"] == "installing" and coop["site"] == "http://rassvet.localhost"
    connection = await Connection.select().where(Connection.id == connection_id).first()
    assert connection["cooperative"] == coop["id"]

    # Its seal: a certificate issued by the operator's, naming the cooperative and its ИНН.
    seal_dir = settings.data_dir / "cooperatives" / INN / "seal"
    certificate = x509.load_pem_x509_certificate((seal_dir / "cooperative.crt.pem").read_bytes())
    operator = x509.load_pem_x509_certificate((settings.data_dir / "seal" / "operator.crt.pem").read_bytes())
    certificate.verify_directly_issued_by(operator)
    assert certificate.subject.get_attributes_for_oid(INN_LE_OID)[0].value == INN
    assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "ПК «Рассвет»"
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key((seal_dir / "cooperative.key.pem").read_bytes(), password=None)
    assert key.public_key() == certificate.public_key()
    assert (seal_dir / "cooperative.key.pem").stat().st_mode & 0o777 == 0o600

    # The member is e-mailed the link; the audit log has it.
    mails = [m for m in await mails_to(member["email"]) if "Сайт" in m["subject"]]
    assert len(mails) == 1
    body = unpack_body(mails[0]["body_text"])[0]
    assert "http://rassvet.localhost/" in body and "ПК «Рассвет»" in mails[0]["subject"]
    assert await AuditEvent.count().where(AuditEvent.action == "connection.provisioned") == 1

    # The domain answers with the cooperative's site; the operator's host still with the operator's.
    client.cookies.clear()
    r = await client.get("/", headers={"Host": "rassvet.localhost"})
    assert r.status_code == 200
    assert "Потребительский кооператив «Рассвет»" in r.text and DESCRIPTION in r.text
    assert "готовится к работе" in r.text
    r = await client.get("/", headers={"Host": "other.localhost"})
    assert r.status_code == 404 and "Рассвет" not in r.text

    # Running again changes nothing: the same job, no new row, no second e-mail.
    before = await ProvisionJob.select().where(ProvisionJob.id == job["id"]).first()
    assert (await provision.enqueue(settings, connection_id))["id"] == job["id"]
    assert await provision.run_pending(settings, "worker-b") == 0
    assert (await provision.claim("worker-b")) is None
    again = await provision.run_job(settings, job, "worker-a")
    assert again == before
    assert await ProvisionJob.select().where(ProvisionJob.id == job["id"]).first() == before
    assert await Cooperative.count() == 2  # the operator and this one
    assert len([m for m in await mails_to(member["email"]) if "Сайт" in m["subject"]]) == 1

    # A new agreement of the same member (another domain, other fees) updates the same cooperative.
    await Connection.update({Connection.status: "replaced"}).where(Connection.id == connection_id)
    renewed = await make_connection(member, "zarya.localhost", fee_share_ind=70_000)
    await provision.enqueue(settings, renewed)
    assert await provision.run_pending(settings, "worker-a") == 1
    assert (await provision.job_of(renewed))["status"] == "done"
    assert await Cooperative.count() == 2
    coop_after = await Cooperative.select().where(Cooperative.id == coop["id"]).first()
    assert coop_after["domain"] == "zarya.localhost" and coop_after["fee_share_ind"] == 70_000
    assert (await Connection.select().where(Connection.id == renewed).first())["cooperative"] == coop["id"]
    r = await client.get("/", headers={"Host": "zarya.localhost"})
    assert r.status_code == 200 and "«Рассвет»" in r.text


async def test_failed_stage_is_shown_and_retried_without_rerunning_done_ones(client, caplog):
    member = await admitted_member(client, email="chair@zarya.example")
    settings = settings_of(client)
    connection_id = await make_connection(member, "zarya.localhost")
    seal_dir = settings.data_dir / "cooperatives" / INN / "seal"
    seal_dir.mkdir(parents=True)
    (seal_dir / "cooperative.crt.pem").write_text("a certificate left without its key\n")  # components will fail

    job = await provision.enqueue(settings, connection_id)
    with caplog.at_level(logging.ERROR, logger="portal.provision"):
        assert await provision.run_pending(settings, "worker-a") == 1
    job = loaded(await provision.job_of(connection_id))
    assert job["status"] == "failed" and job["stage"] == "components" and job["lease_until"] is None
    assert "Печать кооператива не выпущена" in job["error"] and "cooperative.key.pem" in job["error"]
    assert stage_states(job) == {"server": "done", "components": "failed", "databases": None,
                                 "finalisation": None}
    logged = [r for r in caplog.records if r.name == "portal.provision" and r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info is not None and "components" in logged[0].getMessage()
    view = provision.job_view(job)["provision"]
    assert view["failed"] and view["failed_stage"] == "Компоненты" and view["progress"] == "1 из 4"
    assert [s["state_label"] for s in view["stages"]] == ["готово", "ошибка", "ожидает", "ожидает"]
    assert await AuditEvent.count().where(AuditEvent.action == "provision.failed") == 1
    assert await Cooperative.count() == 1 and not await mails_to_site(member)

    # Shown in the cabinet (and in its htmx-polled part) and in the staff console.
    r = await client.get("/cabinet/connection")
    assert r.status_code == 200 and 'id="provision"' in r.text
    assert "Ошибка на этапе «Компоненты»: Печать кооператива не выпущена" in r.text and "1 из 4" in r.text
    r = await client.get("/cabinet/connection/status", headers={"HX-Request": "true"})
    assert 'id="provision"' in r.text and "1 из 4" in r.text

    # The failed job stays failed: enqueue and the background change nothing.
    assert (await provision.enqueue(settings, connection_id))["status"] == "failed"
    assert await provision.run_pending(settings, "worker-a") == 0

    # Staff retry over HTTP: member and strangers cannot, staff can (CSRF as every form).
    r = await post_form(client, f"/staff/connections/{connection_id}/provision/retry", {}, follow_redirects=False)
    assert r.status_code == 403  # the member's own session
    assert (await provision.job_of(connection_id))["status"] == "failed"
    from tests.integration.test_admissions import as_staff

    await as_staff(client)
    r = await client.post(f"/staff/connections/{connection_id}/provision/retry", follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = await client.get(f"/staff/connections/{connection_id}")
    assert r.status_code == 200 and 'id="provision"' in r.text and "Ошибка на этапе «Компоненты»" in r.text
    # Fix the cause; the server stage would now fail if it ran again (it must not: it is done).
    (seal_dir / "cooperative.crt.pem").unlink()
    await Connection.update({Connection.dns_status: "missing"}).where(Connection.id == connection_id)
    server_record = job["stages"]["server"]
    r = await post_form(client, f"/staff/connections/{connection_id}/provision/retry", {}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/connections"
    queued = loaded(await provision.job_of(connection_id))
    assert queued["status"] == "queued" and queued["error"] == "" and queued["attempts"] == 1
    assert stage_states(queued) == {"server": "done", "components": None, "databases": None, "finalisation": None}
    retried = await AuditEvent.select().where(AuditEvent.action == "provision.retried").first()
    assert retried["actor_type"] == "staff" and retried["actor_label"] == "staff@voskhod.example"
    r = await post_form(client, "/staff/connections/999999/provision/retry", {}, follow_redirects=False)
    assert r.status_code == 404

    assert await provision.run_pending(settings, "worker-b") == 1
    job = loaded(await provision.job_of(connection_id))
    assert job["status"] == "done" and job["attempts"] == 2
    assert job["stages"]["server"] == server_record  # not run again
    assert stage_states(job) == {key: "done" for key, _ in provision.STAGES}
    assert len(await mails_to_site(member)) == 1
    r = await client.get(f"/staff/connections/{connection_id}")
    assert "4 из 4" in r.text and "Ошибка на этапе" not in r.text
    # A second retry of a done job changes nothing.
    assert (await provision.retry(job["id"]))["status"] == "done"


async def mails_to_site(member: dict) -> list[dict]:
    return [m for m in await mails_to(member["email"]) if m["subject"].startswith("Сайт")]


async def test_failures_say_what_to_fix(client):
    member = await admitted_member(client, email="chair@utro.example")
    settings = settings_of(client)
    elsewhere = await make_connection(member, "utro.localhost", dns_status="elsewhere", dns_addresses="203.0.113.7")
    await provision.enqueue(settings, elsewhere)
    await provision.run_pending(settings, "worker-a")
    job = await provision.job_of(elsewhere)
    assert job["status"] == "failed" and job["stage"] == "server"
    assert "203.0.113.7" in job["error"] and "127.0.0.1" in job["error"]
    assert await Cooperative.count() == 1
    r = await client.get("/", headers={"Host": "utro.localhost"})
    assert r.status_code == 404

    # An agreement replaced while its job waited: nothing is made for it.
    replaced = await make_connection(member, "old.localhost")
    await provision.enqueue(settings, replaced)
    await Connection.update({Connection.status: "replaced"}).where(Connection.id == replaced)
    await provision.run_pending(settings, "worker-a")
    job = await provision.job_of(replaced)
    assert job["status"] == "failed" and job["stage"] == "server"
    assert "не действует (заменено новым соглашением)" in job["error"]

    # A domain some other cooperative's site already answers for is not given a second one.
    t = now()
    await Cooperative.insert(Cooperative(name_full="Потребительский кооператив «Другой»", name_short="ПК «Другой»",
                                         inn="7728168971", domain="taken.localhost", created_at=t))
    taken = await make_connection(member, "taken.localhost")
    await provision.enqueue(settings, taken)
    await provision.run_pending(settings, "worker-a")
    job = await provision.job_of(taken)
    assert job["status"] == "failed" and job["stage"] == "databases"
    assert "уже отдан сайту другого кооператива" in job["error"] and "ПК «Другой»" in job["error"]
    assert await Cooperative.count() == 2 and not await mails_to_site(member)
    r = await client.get("/", headers={"Host": "taken.localhost"})
    assert "«Другой»" in r.text and "Рассвет" not in r.text


COMMAND_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path

    log = Path(sys.argv[1])
    stage = os.environ["PORTAL_PROVISION_STAGE"]
    keys = sorted(k for k in os.environ if k.startswith(("COOP_", "PORTAL_")))
    with log.open("a") as f:
        f.write(json.dumps({k: os.environ[k] for k in keys}, ensure_ascii=False) + "\\n")
    print(f"stage {stage} for {os.environ['COOP_DOMAIN_UNICODE']} <b>")
    if stage == "databases" and (log.parent / "fail").exists():
        print("database server refused: FATAL", file=sys.stderr)
        sys.exit(3)
""")


async def test_command_provisioner_runs_the_command_per_stage(client, tmp_path):
    member = await admitted_member(client, email="chair@kolos.example")
    domain = clean_domain("колос.рф")
    connection_id = await make_connection(member, domain)
    script, log = tmp_path / "provision.py", tmp_path / "calls.jsonl"
    script.write_text(COMMAND_SCRIPT)
    (tmp_path / "fail").touch()
    settings = dataclasses.replace(settings_of(client),
                                   provision_command=f"{sys.executable} {script} {log}")

    await provision.enqueue(settings, connection_id)
    assert await provision.run_pending(settings, "worker-a") == 1
    job = loaded(await provision.job_of(connection_id))
    assert job["status"] == "failed" and job["stage"] == "databases"
    assert "кодом 3" in job["error"]
    output = job["stages"]["databases"]["output"]
    assert "database server refused: FATAL" in output and "stage databases for колос.рф" in output
    assert "stage server for колос.рф" in job["stages"]["server"]["output"]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["PORTAL_PROVISION_STAGE"] for c in calls] == ["server", "components", "databases"]
    env = calls[0]
    assert env["COOP_DOMAIN"] == domain and domain.startswith("xn--") and env["COOP_DOMAIN_UNICODE"] == "колос.рф"
    assert env["COOP_NAME"] == "Потребительский кооператив «Рассвет»" and env["COOP_INN"] == INN
    assert env["COOP_HOSTING"] == "hosted" and env["COOP_MEMBER_EMAIL"] == "chair@kolos.example"
    assert (env["COOP_FEE_ENTRANCE_ORG"], env["COOP_FEE_SHARE_ORG"]) == ("150000", "500050")
    assert (env["COOP_FEE_ENTRANCE_IND"], env["COOP_FEE_SHARE_IND"]) == ("20000", "60000")
    assert env["COOP_SEAL_DIR"] == str(settings.data_dir / "cooperatives" / INN / "seal")
    assert (Path(env["COOP_SEAL_DIR"]) / "cooperative.crt.pem").exists()  # issued before the components command
    # Nothing recorded locally before the last stage succeeds.
    assert await Cooperative.count() == 1 and not await mails_to_site(member)
    view = provision.job_view(job)["provision"]
    assert view["stages"][2]["output"] == output  # the template escapes it (tests/unit/test_provision.py)

    (tmp_path / "fail").unlink()
    await provision.retry(job["id"])
    assert await provision.run_pending(settings, "worker-b") == 1
    job = loaded(await provision.job_of(connection_id))
    assert job["status"] == "done", job["error"]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["PORTAL_PROVISION_STAGE"] for c in calls] == ["server", "components", "databases", "databases",
                                                            "finalisation"]
    coop = await Cooperative.select().where(Cooperative.domain == domain).first()
    assert coop is not None and coop["status"] == "installing" and coop["inn"] == INN
    assert (await Connection.select().where(Connection.id == connection_id).first())["cooperative"] == coop["id"]
    mails = await mails_to_site(member)
    assert len(mails) == 1 and f"http://{domain}/" in unpack_body(mails[0]["body_text"])[0]


SLOW_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    if os.environ["PORTAL_PROVISION_STAGE"] == "server":
        Path(sys.argv[0]).with_name("pid").write_text(str(os.getpid()))
        time.sleep(float(sys.argv[1]))
    print("ok")
""")


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


async def test_a_long_stage_keeps_its_lease(client, tmp_path):
    member = await admitted_member(client, email="chair@dolgo.example")
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    settings = dataclasses.replace(settings_of(client), provision_command=f"{sys.executable} {script} 2.0")
    connection_id = await make_connection(member, "dolgo.localhost")
    await provision.enqueue(settings, connection_id)
    job = await provision.claim("worker-a", lease_seconds=0.6)
    running = asyncio.create_task(provision.run_job(settings, job, "worker-a", lease_seconds=0.6))
    for _ in range(6):  # three leases long: renewed all along, nobody else takes the job
        await asyncio.sleep(0.25)
        assert await provision.claim("worker-b", lease_seconds=0.6) is None
    row = await provision.job_of(connection_id)
    assert row["status"] == "running" and row["stage"] == "server" and row["lease_until"] > now()
    done = await running
    assert done["status"] == "done" and done["attempts"] == 1 and done["claimed_by"] == "worker-a"


async def test_a_stopping_process_gives_its_job_back(client, tmp_path):
    member = await admitted_member(client, email="chair@stop.example")
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    settings = dataclasses.replace(settings_of(client), provision_command=f"{sys.executable} {script} 30")
    connection_id = await make_connection(member, "stop.localhost")
    await provision.enqueue(settings, connection_id)
    job = await provision.claim("worker-a")
    running = asyncio.create_task(provision.run_job(settings, job, "worker-a"))
    await asyncio.sleep(1.0)
    assert (await provision.job_of(connection_id))["stage"] == "server"
    pid = int((tmp_path / "pid").read_text())
    assert alive(pid)
    started = time.monotonic()
    running.cancel()  # SIGTERM: the server cancels its tasks
    with pytest.raises(asyncio.CancelledError):
        await running
    assert time.monotonic() - started < 5  # the command was killed, not waited for
    await asyncio.sleep(0.3)
    assert not alive(pid)
    row = loaded(await provision.job_of(connection_id))
    assert row["status"] == "queued" and row["lease_until"] is None and row["stages"] == {}
    again = await provision.claim("worker-b")  # at once, no lease to wait for
    assert again["id"] == job["id"] and again["attempts"] == 2


async def test_concurrent_claimers_take_each_job_once(client):
    member = await admitted_member(client, email="chair@niva.example")
    settings = settings_of(client)
    one = await make_connection(member, "niva.localhost")
    await provision.enqueue(settings, one)
    taken = await asyncio.gather(*(provision.claim(f"worker-{i}") for i in range(8)))
    winners = [job for job in taken if job is not None]
    assert len(winners) == 1
    job = await provision.job_of(one)
    assert job["attempts"] == 1 and job["claimed_by"] == winners[0]["claimed_by"] and job["status"] == "running"

    more = [await make_connection(member, f"niva{i}.localhost") for i in range(3)]
    for connection_id in more:
        await provision.enqueue(settings, connection_id)
    taken = await asyncio.gather(*(provision.claim(f"worker-{i}") for i in range(10)))
    ids = [job["id"] for job in taken if job is not None]
    assert len(ids) == 3 == len(set(ids))
    assert all(job["attempts"] == 1 for job in await ProvisionJob.select())


CLAIMER = textwrap.dedent("""
    import asyncio, json, os, sys, time
    from pathlib import Path

    from portal import db
    from portal.connection import provision
    from portal.settings import load_settings

    async def main():
        settings = load_settings()
        db.configure_database(settings)
        await db.start(settings)
        go = Path(sys.argv[1])
        (go.parent / f"ready-{sys.argv[2]}").touch()
        while not go.exists():
            time.sleep(0.01)
        job = await provision.claim(sys.argv[2])
        await db.stop(settings)
        print(json.dumps(job and job["id"]))

    asyncio.run(main())
""")


async def test_claimers_in_separate_processes_take_the_job_once(client, tmp_path):
    member = await admitted_member(client, email="chair@luch.example")
    settings = settings_of(client)
    job = await provision.enqueue(settings, await make_connection(member, "luch.localhost"))
    script, go = tmp_path / "claimer.py", tmp_path / "go"
    script.write_text(CLAIMER)
    env = {**os.environ, "PORTAL_ENV": "dev", "PORTAL_DATA_DIR": str(settings.data_dir),
           "PORTAL_DATABASE_URL": settings.database_url, "PORTAL_SECRET_KEY": settings.secret_key,
           "PORTAL_BASE_URL": settings.base_url, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    processes = [subprocess.Popen([sys.executable, str(script), str(go), f"process-{i}"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < len(processes) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # every process connected and waiting: then all claim at once
    go.touch()
    results = []
    for process in processes:
        out, err = await asyncio.to_thread(process.communicate, timeout=60)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(results, key=lambda x: x is None) == [job["id"], None, None, None]
    row = await provision.job_of(job["connection"])
    assert row["attempts"] == 1 and row["claimed_by"].startswith("process-")


async def test_a_job_whose_process_died_is_taken_again(client):
    member = await admitted_member(client, email="chair@vesna.example")
    settings = settings_of(client)
    connection_id = await make_connection(member, "vesna.localhost")
    await provision.enqueue(settings, connection_id)
    first = await provision.claim("dead-process", lease_seconds=0.5)
    assert first is not None
    # It started the first stage and died: the stage shows running, the lease still holds for a moment.
    stages = {"server": {"status": "running", "output": "", "started_at": now().isoformat(), "finished_at": None}}
    await ProvisionJob.update({ProvisionJob.stage: "server", ProvisionJob.stages: stages}).where(
        ProvisionJob.id == first["id"])
    assert await provision.claim("restarted") is None
    assert provision.job_view(loaded(await provision.job_of(connection_id)))["provision"]["stages"][0][
        "state_label"] == "выполняется"
    await asyncio.sleep(0.6)
    second = await provision.claim("restarted")
    assert second is not None and second["id"] == first["id"]
    assert second["attempts"] == 2 and second["claimed_by"] == "restarted"
    done = await provision.run_job(settings, second, "restarted")
    assert done["status"] == "done"
    # The dead process coming back changes nothing: the job is not its own any more.
    assert await provision.run_job(settings, first, "dead-process") == await provision.job_of(connection_id)
    assert len(await mails_to_site(member)) == 1
    assert await Cooperative.count() == 2
