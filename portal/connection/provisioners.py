"""What each provisioning stage does: the default provisioner (this portal serves the cooperative by its host name)
and the command provisioner (``PORTAL_PROVISION_COMMAND`` does the work on real servers).

A stage is two halves (``Stage``): ``work`` runs outside any transaction (a DNS check, the seal's files, a
subprocess that may take minutes while the job's lease is renewed beside it) and must be safe to run twice —
a process may die after it and before the stage is recorded; ``commit`` runs inside the transaction that records
the stage done (``portal.connection.provision``), so its rows, the e-mail in the outbox and the audit event are
written exactly once together with that record, or not at all.

The default provisioner:

- ``server`` — the connection's domain points at this server (``Connection.dns_status`` "delegated", as the DNS
  check found it); otherwise the stage fails and says what to fix.
- ``components`` — the cooperative's seal: a key and a certificate issued by the operator's seal certificate,
  in ``data_dir/cooperatives/<ИНН>/seal`` (the ИНН: it stays the same across agreements of the cooperative).
- ``databases`` — the cooperative's own ``Cooperative`` row: the requisites from the member's signed joining
  application, the fees, domain and description from the agreement, status "installing". Upserted: a second
  run, or a new agreement of the same member, updates the row the member's earlier connection made.
- ``finalisation`` — ``Connection.cooperative`` set, the member e-mailed the site's link, an audit event. From
  the ``databases`` stage on, a request to the domain gets the cooperative's site (``portal.sites``).

The command provisioner runs ``PORTAL_PROVISION_COMMAND`` (split by ``shlex``, no shell) once per stage with
``PORTAL_PROVISION_STAGE`` and the cooperative's data in the environment (``command_env``; the portal's own
``PORTAL_*`` settings, secrets among them, are not passed on); a non-zero exit
status or a timeout fails the stage with the command's output. The command must be idempotent (as an Ansible
playbook is): a stage that was interrupted runs again. What the operator records locally after it: the
cooperative's seal is issued here before the ``components`` command (``COOP_SEAL_DIR`` points at it, for the
command to copy the key and certificates to the server); after the ``finalisation`` command succeeds, the same
``Cooperative`` row as the default provisioner makes (the operator's register of connected cooperatives: the
staff console, the TLS question, the API), ``Connection.cooperative``, the e-mail with the link and the audit
event. The site itself is whatever the command set up; should the domain's requests reach this portal, it
serves the cooperative's page as with the default provisioner.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from portal.accounts.tables import Member
from portal.audit.service import record
from portal.clock import now
from portal.connection.forms import shown_domain
from portal.connection.tables import Connection
from portal.cooperatives.tables import Cooperative
from portal.documents import store
from portal.mail.service import send_template

#: How long one stage's command may run (seconds); then it is killed and the stage fails.
COMMAND_TIMEOUT_SECONDS = 1800.0
#: How much of a command's output is kept (characters): the beginning and the end, the middle cut out.
OUTPUT_LIMIT = 20_000
#: What the joining application must hold for the cooperative's row (organization's keys, see
#: portal.applications.service.document_data).
REQUISITE_KEYS = ("org_full_name", "org_short_name", "inn", "kpp", "ogrn", "legal_address", "email", "phone",
                  "bank_name", "bik", "corr_account", "settlement_account")


class StageError(Exception):
    """A stage failed; the message (Russian) is shown on the page, ``output`` (what a command printed) under it."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


@dataclass
class Subject:
    """The connection being provisioned, with what the stages need of the member and the cooperative."""

    connection: dict
    member: dict
    requisites: dict  # of the joining application, organization's keys (REQUISITE_KEYS)

    @property
    def domain(self) -> str:
        return self.connection["domain"]

    @property
    def inn(self) -> str:
        return self.requisites["inn"]


@dataclass
class Context:
    settings: object
    job: dict
    subject: Subject
    stages: dict  # the job's stage records, as run so far (a stage may add keys to its own record via ``extra``)
    extra: dict = field(default_factory=dict)  # what the running stage adds to its record (e.g. "cooperative")


@dataclass(frozen=True)
class Stage:
    work: Callable[[Context], Awaitable[str]] | None = None  # outside transactions, idempotent
    commit: Callable[[Context], Awaitable[str]] | None = None  # in the transaction recording the stage done


# --------------------------------------------------------------------------- the subject


_NOT_IN_FORCE = {"draft": "черновик", "signed": "ждёт одобрения", "returned": "возвращено на доработку",
                 "replaced": "заменено новым соглашением"}


async def load_subject(connection_id: int) -> Subject:
    """The connection, its member and the requisites of the member's signed joining application."""
    connection = await Connection.select().where(Connection.id == connection_id).first()
    if connection is None:
        raise StageError("Соглашение о подключении не найдено.")
    if connection["status"] != "approved":
        state = _NOT_IN_FORCE.get(connection["status"], connection["status"])
        raise StageError(f"Соглашение о подключении не действует ({state}): сайт по нему не развёртывается. Развёртывание "
                         "пойдёт по новому соглашению, когда его одобрят.")
    member = await Member.select(Member.id, Member.email, Member.display_name, Member.cooperative).where(
        Member.id == connection["member"]).first()
    data = None
    for doc in await store.documents_of(member["id"], package="join", with_canonical=True):
        if doc["template_id"] == "join_application":
            data = json.loads(doc["canonical_json"])["data"]["data"]
    if data is None:
        raise StageError("У пайщика нет подписанного заявления о вступлении: реквизиты кооператива взять неоткуда.")
    if data.get("applicant_type") != "organization":
        raise StageError("Сайт делается для кооператива-организации, а в подписанном заявлении о вступлении пайщик — "
                         "не организация: реквизитов кооператива (наименование, ИНН, ОГРН) нет.")
    requisites = {key: str(data.get(key) or "") for key in REQUISITE_KEYS}
    return Subject(connection, member, requisites)


def site_url(settings, domain: str) -> str:
    """The cooperative's site: base_url's scheme, the domain (punycode) and base_url's port
    (http://coop.localhost:8000 in development)."""
    parts = urlsplit(settings.base_url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'https'}://{domain}{port}"


def seal_directory(settings, inn: str) -> Path:
    return Path(settings.data_dir) / "cooperatives" / inn / "seal"


_CITY = re.compile(r"\b(г\.\s*[А-ЯЁA-Z][^,;]*)")


def city_of(address: str) -> str:
    """«117997, г. Москва, ул. Вавилова, д. 19» → «г. Москва» (the place printed next to a document's date)."""
    found = _CITY.search(address or "")
    return " ".join(found.group(1).split()) if found else ""


# --------------------------------------------------------------------------- the stages' halves


_DNS_PROBLEMS = {
    "missing": "Домен {domain} ещё не указывает ни на какой адрес: добавьте A-запись с адресом {ip} и дождитесь "
               "проверки DNS.",
    "elsewhere": "Домен {domain} указывает на другой адрес ({addresses}), а не на сервер ВОСХОДа {ip}: исправьте "
                 "A-запись и дождитесь проверки DNS.",
    "unknown": "DNS домена {domain} ещё не проверен: нажмите «Проверить сейчас» в разделе «Подключение» или дождитесь "
               "проверки.",
}


async def check_server(ctx: Context) -> str:
    """The domain must point at this server: the DNS check recorded it as delegated."""
    connection = await Connection.select(Connection.dns_status, Connection.dns_addresses).where(
        Connection.id == ctx.subject.connection["id"]).first()
    status = connection["dns_status"]
    shown = shown_domain(ctx.subject.domain)
    ip = ctx.settings.server_ip
    if status != "delegated":
        template = _DNS_PROBLEMS.get(status, _DNS_PROBLEMS["unknown"])
        raise StageError(template.format(domain=shown, ip=ip, addresses=connection["dns_addresses"] or "—"))
    return (f"Домен {shown} указывает на сервер ВОСХОДа ({connection['dns_addresses'] or ip}); сайт кооператива "
            "будет работать на этом портале.")


async def issue_seal(ctx: Context) -> str:
    """The cooperative's seal certificate, issued by the operator's (made once; later runs load it)."""
    from portal.documents.seal import SealIdentityError, ensure_seal_identity, issue_cooperative_identity

    settings = ctx.settings
    operator = ensure_seal_identity(settings.data_dir, settings.operator.name_short)
    directory = seal_directory(settings, ctx.subject.inn)
    try:
        identity = await asyncio.to_thread(issue_cooperative_identity, operator, directory,
                                           ctx.subject.requisites["org_short_name"], ctx.subject.inn)
    except (SealIdentityError, ValueError, OSError) as exc:
        raise StageError(f"Печать кооператива не выпущена: {exc}") from exc
    return (f"Печать кооператива: сертификат «{identity.subject_name}», ИНН {ctx.subject.inn}, выдан сертификатом "
            f"печати оператора (SHA-256 {identity.issuer_sha256[:16]}…); SHA-256 сертификата "
            f"{identity.certificate_sha256}. Каталог: {directory}")


async def existing_cooperative(ctx: Context) -> int | None:
    """The cooperative row this member's connections already have: this job's own (its ``databases`` record),
    else the one an earlier agreement of the member was provisioned into."""
    recorded = (ctx.stages.get("databases") or {}).get("cooperative")
    if recorded and await Cooperative.exists().where(Cooperative.id == recorded):
        return int(recorded)
    row = await Connection.select(Connection.cooperative).where(
        (Connection.member == ctx.subject.member["id"]) & Connection.cooperative.is_not_null()
    ).order_by(Connection.id, ascending=False).first()
    return row["cooperative"] if row else None


def cooperative_values(ctx: Context) -> dict:
    """The cooperative's row as the signed application and the agreement describe it."""
    r, c = ctx.subject.requisites, ctx.subject.connection
    return {
        "name_full": r["org_full_name"], "name_short": r["org_short_name"], "inn": r["inn"], "kpp": r["kpp"],
        "ogrn": r["ogrn"], "address": r["legal_address"], "email": r["email"], "phone": r["phone"][:20],
        "bank_name": r["bank_name"], "bik": r["bik"], "corr_account": r["corr_account"],
        "settlement_account": r["settlement_account"], "domain": c["domain"], "description": c["description"],
        "fee_entrance_org": c["fee_entrance_org"], "fee_share_org": c["fee_share_org"],
        "fee_entrance_ind": c["fee_entrance_ind"], "fee_share_ind": c["fee_share_ind"],
        "city": city_of(r["legal_address"]), "site": site_url(ctx.settings, c["domain"]), "is_operator": False,
    }


async def upsert_cooperative(ctx: Context) -> str:
    """The cooperative's own row: made once, updated by later runs and later agreements of the same member (an
    active site stays active)."""
    values = cooperative_values(ctx)
    named = f"{values['name_short']}, домен {shown_domain(values['domain'])}"
    existing = await existing_cooperative(ctx)
    taken = await Cooperative.select(Cooperative.id, Cooperative.name_short).where(
        (Cooperative.domain == values["domain"]) & (Cooperative.is_operator == False)  # noqa: E712
        & (Cooperative.id != (existing or 0))).first()
    if taken is not None:  # one host, one site: never a second row answering for the same domain
        raise StageError(f"Домен {shown_domain(values['domain'])} уже отдан сайту другого кооператива "
                         f"({taken['name_short']}, № {taken['id']}): проверьте договор.")
    if existing is not None:
        await Cooperative.update({getattr(Cooperative, k): v for k, v in values.items()}).where(
            Cooperative.id == existing)
        ctx.extra["cooperative"] = existing
        return f"Запись кооператива № {existing} обновлена: {named}."
    rows = await Cooperative.insert(Cooperative(**values, status="installing", created_at=now())).returning(
        Cooperative.id)
    ctx.extra["cooperative"] = rows[0]["id"]
    return f"Запись кооператива № {rows[0]['id']} создана: {named}."


async def finalise(ctx: Context) -> str:
    """The connection points at its cooperative, the member gets the link, the audit log has it."""
    cooperative_id = ctx.extra.get("cooperative") or await existing_cooperative(ctx)
    if cooperative_id is None:
        raise StageError("Запись кооператива не найдена: этап «Базы данных» не выполнен.")
    subject, settings = ctx.subject, ctx.settings
    url = site_url(settings, subject.domain) + "/"
    await Connection.update({Connection.cooperative: cooperative_id, Connection.updated_at: now()}).where(
        Connection.id == subject.connection["id"])
    await send_template(settings, subject.member["email"], "mail/site_ready.txt", {
        "name": subject.member["display_name"] or subject.member["email"],
        "cooperative": subject.requisites["org_short_name"], "domain": shown_domain(subject.domain), "url": url,
    })
    await record("connection.provisioned", object_type="connection", object_id=subject.connection["id"],
                 details={"job": ctx.job["id"], "cooperative": cooperative_id, "domain": subject.domain, "url": url,
                          "member": subject.member["id"]})
    return f"Сайт открыт: {url} — письмо со ссылкой отправлено на {subject.member['email']}."


DEFAULT = {
    "server": Stage(work=check_server),
    "components": Stage(work=issue_seal),
    "databases": Stage(commit=upsert_cooperative),
    "finalisation": Stage(commit=finalise),
}


# --------------------------------------------------------------------------- the command provisioner


def bounded(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """``text`` kept to about ``limit`` characters: its beginning and its end (errors are usually at the end)."""
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n… [пропущено символов: {len(text) - limit}] …\n{text[-tail:]}"


def command_env(settings, subject: Subject, stage: str) -> dict[str, str]:
    """The environment of the command: the portal's own without its settings (``PORTAL_*``: the secret key, the
    database URL, payment and SMTP credentials stay in the portal; PATH, HOME, SSH_AUTH_SOCK, ANSIBLE_* … pass),
    then the stage and the cooperative's data."""
    r, c = subject.requisites, subject.connection
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
        "PORTAL_PROVISION_STAGE": stage,
        "PORTAL_BASE_URL": settings.base_url,
        "PORTAL_SERVER_IP": settings.server_ip,
        "COOP_CONNECTION_ID": str(c["id"]),
        "COOP_DOMAIN": c["domain"],
        "COOP_DOMAIN_UNICODE": shown_domain(c["domain"]),
        "COOP_URL": site_url(settings, c["domain"]),
        "COOP_HOSTING": c["hosting"],
        "COOP_DESCRIPTION": c["description"],
        "COOP_NAME": r["org_full_name"],
        "COOP_NAME_SHORT": r["org_short_name"],
        "COOP_INN": r["inn"],
        "COOP_KPP": r["kpp"],
        "COOP_OGRN": r["ogrn"],
        "COOP_ADDRESS": r["legal_address"],
        "COOP_EMAIL": r["email"],
        "COOP_PHONE": r["phone"],
        "COOP_BANK_NAME": r["bank_name"],
        "COOP_BIK": r["bik"],
        "COOP_CORR_ACCOUNT": r["corr_account"],
        "COOP_SETTLEMENT_ACCOUNT": r["settlement_account"],
        "COOP_FEE_ENTRANCE_ORG": str(c["fee_entrance_org"]),
        "COOP_FEE_SHARE_ORG": str(c["fee_share_org"]),
        "COOP_FEE_ENTRANCE_IND": str(c["fee_entrance_ind"]),
        "COOP_FEE_SHARE_IND": str(c["fee_share_ind"]),
        "COOP_MEMBER_EMAIL": subject.member["email"],
        "COOP_SEAL_DIR": str(seal_directory(settings, r["inn"])),
    }


async def run_command(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """Run ``argv`` (no shell), stdout and stderr together; (exit status, output). On timeout the process is
    killed and the status is None."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        raise StageError(f"Команда развёртывания не запускается: {argv[0]}: {exc.strerror or exc}.") from None
    head, tail = bytearray(), bytearray()
    size = 0

    async def read() -> None:  # the beginning and the end are kept, however much it prints
        nonlocal size, tail
        assert process.stdout is not None
        while block := await process.stdout.read(65536):
            size += len(block)
            room = max(0, 4 * OUTPUT_LIMIT - len(head))
            head.extend(block[:room])
            tail.extend(block[room:])
            if len(tail) > 4 * OUTPUT_LIMIT:
                tail = tail[-4 * OUTPUT_LIMIT:]

    reader = asyncio.create_task(read())
    try:
        code: int | None = await asyncio.wait_for(_finish(process, reader), timeout)
    except asyncio.TimeoutError:
        code = None
    except asyncio.CancelledError:
        _kill(process)
        raise
    if code is None:
        _kill(process)
        await process.wait()
        try:
            await asyncio.wait_for(reader, 5)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
    skipped = size - len(head) - len(tail)
    text = head.decode("utf-8", errors="replace")
    if skipped > 0:
        text += f"\n… [пропущено байт: {skipped}] …\n"
    text += tail.decode("utf-8", errors="replace")
    return code, bounded(text)


async def _finish(process: asyncio.subprocess.Process, reader: asyncio.Task) -> int:
    await asyncio.shield(reader)
    return await process.wait()


def _kill(process: asyncio.subprocess.Process) -> None:
    """The command and whatever it started (its own process group)."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def command_stage(key: str, *, before: Callable[[Context], Awaitable[str]] | None = None) -> Callable:
    async def work(ctx: Context) -> str:
        settings = ctx.settings
        notes = await before(ctx) + "\n" if before else ""
        argv = shlex.split(settings.provision_command)
        if not argv:
            raise StageError("PORTAL_PROVISION_COMMAND пуста.")
        code, output = await run_command(argv, command_env(settings, ctx.subject, key), COMMAND_TIMEOUT_SECONDS)
        if code is None:
            raise StageError(f"Команда развёртывания не завершилась за {int(COMMAND_TIMEOUT_SECONDS)} с и остановлена "
                             f"(этап {key}).", output)
        if code != 0:
            raise StageError(f"Команда развёртывания завершилась с кодом {code} (этап {key}).", output)
        return f"{notes}$ {settings.provision_command} (PORTAL_PROVISION_STAGE={key}) — код 0\n{output}".rstrip()
    return work


async def _record_locally(ctx: Context) -> str:
    """After the command's last stage: the operator's own records of the cooperative (see the module's text)."""
    made = await upsert_cooperative(ctx)
    return f"{made}\n{await finalise(ctx)}"


COMMAND = {
    "server": Stage(work=command_stage("server")),
    "components": Stage(work=command_stage("components", before=issue_seal)),
    "databases": Stage(work=command_stage("databases")),
    "finalisation": Stage(work=command_stage("finalisation"), commit=_record_locally),
}


def provisioner_for(settings) -> dict[str, Stage]:
    return COMMAND if settings.provision_command else DEFAULT

