"""Provisioning of a connected cooperative's site: a job per approved hosted connection, kept in the database.

Why a job table and leases: the portal runs as several processes (granian workers, ``portal worker``), possibly on
several machines with one PostgreSQL. A job is taken by one conditional UPDATE (``claim``): the row changes to
"running" with ``claimed_by`` and ``lease_until`` only if it is still queued or its lease ran out, so of several
claimers exactly one gets it, on SQLite (writes are serialised) and on PostgreSQL (the second UPDATE waits for the
first and re-checks the condition on the new row). A process that dies leaves its lease to run out; the next
claim takes the job again and runs the stages not done yet (a process stopped in order gives its job back at
once). The lease is renewed while a stage runs; every record of the job's progress is written only while this
process still holds it, and a stage's database changes are committed in the same transaction as "stage done"
(``provisioners.Stage.commit``), so a process that lost its lease changes nothing, and the e-mail with the
site's link goes out once.

    job = await enqueue(settings, connection_id)        # once the connection is approved (and the domain delegated)
    await run_pending(settings, worker_id)              # in the background: claim and run until none is left
    await retry(job["id"])                              # staff: a failed job queued again

``attempts`` counts the claims: how many times a process started on the job (a restart or a retry adds one).
The stages and what they do: ``portal.connection.provisioners``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import socket
import uuid
from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from portal import db
from portal.audit.service import record
from portal.clock import datetime_ru, now
from portal.connection.provisioners import Context, StageError, load_subject, provisioner_for
from portal.connection.tables import Connection, ProvisionJob
from portal.origin import SYSTEM, Origin, origin_of
from portal.staff.guards import current_staff, staff_guard
from portal.web import redirect

log = logging.getLogger("portal.provision")

STAGES = (("server", "Сервер"), ("components", "Компоненты"), ("databases", "Базы данных"),
          ("finalisation", "Завершение"))
STAGE_LABELS = dict(STAGES)
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
LEASE_SECONDS = 300.0
STATE_LABELS = {"pending": "ожидает", RUNNING: "выполняется", DONE: "готово", FAILED: "ошибка"}
JOB_LABELS = {None: "не начата", QUEUED: "в очереди", RUNNING: "идёт", DONE: "завершена",
              FAILED: "остановлена с ошибкой"}


class ProvisionError(Exception):
    """Nothing was changed; the message is for the person who asked."""


def worker_name() -> str:
    """An identity for ``claim``: the host, the process and something unique to this run."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _stages(job: dict) -> dict:
    value = job.get("stages") or {}
    if isinstance(value, str):
        value = json.loads(value or "{}")
    return dict(value)


def _iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds")


async def _job(job_id: int) -> dict | None:
    return await ProvisionJob.select().where(ProvisionJob.id == job_id).first()


async def job_of(connection_id: int) -> dict | None:
    """The connection's provisioning job, or None."""
    return await ProvisionJob.select().where(ProvisionJob.connection == connection_id).order_by(
        ProvisionJob.id).first()


# --------------------------------------------------------------------------- the queue


async def enqueue(settings, connection_id: int) -> dict | None:
    """The job of an approved, hosted connection, made once: calling it again returns the same job as it is (a
    failed one stays failed until ``retry``). None for a self-hosted connection (its own instance installs
    itself) and for one not approved."""
    async with db.transaction():  # the connection's row locked: two enqueues at once make one job
        q = Connection.select(Connection.id, Connection.status, Connection.hosting).where(
            Connection.id == connection_id)
        if db.engine().engine_type == "postgres":
            q = q.lock_rows()
        connection = await q.first()
        if connection is None:
            raise ProvisionError("Соглашение о подключении не найдено.")
        existing = await job_of(connection_id)
        if existing is not None:
            return existing
        if connection["status"] != "approved" or connection["hosting"] != "hosted":
            return None
        t = now()
        rows = await ProvisionJob.insert(ProvisionJob(
            connection=connection_id, status=QUEUED, stage="", stages={}, attempts=0, claimed_by="",
            error="", created_at=t, updated_at=t)).returning(ProvisionJob.id)
        await record("provision.queued", object_type="connection", object_id=connection_id,
                     details={"job": rows[0]["id"]})
    return await _job(rows[0]["id"])


def _claimable(t: dt.datetime):
    return (ProvisionJob.status == QUEUED) | (
        (ProvisionJob.status == RUNNING) & (ProvisionJob.lease_until.is_null() | (ProvisionJob.lease_until < t)))


async def claim(worker_id: str, lease_seconds: float = LEASE_SECONDS) -> dict | None:
    """Take one queued job, or a running one whose lease ran out (its process died); None when there is none.
    Of several processes claiming at once, exactly one gets a given job."""
    while True:
        t = now()
        candidate = await ProvisionJob.select(ProvisionJob.id).where(_claimable(t)).order_by(ProvisionJob.id).first()
        if candidate is None:
            return None
        rows = await ProvisionJob.update({
            ProvisionJob.status: RUNNING, ProvisionJob.claimed_by: worker_id[:100],
            ProvisionJob.lease_until: t + dt.timedelta(seconds=lease_seconds),
            ProvisionJob.attempts: ProvisionJob.attempts + 1, ProvisionJob.updated_at: t,
        }).where((ProvisionJob.id == candidate["id"]) & _claimable(t)).returning(ProvisionJob.id)
        if rows:
            return await _job(rows[0]["id"])
        # another process took it a moment ago: look for the next one


async def _write(job_id: int, worker_id: str, values: dict, lease_seconds: float | None) -> bool:
    """Record progress and renew the lease (None: the job ends, no lease) only while this worker holds the job;
    False when it lost it."""
    t = now()
    rows = await ProvisionJob.update({
        **values, ProvisionJob.updated_at: t,
        ProvisionJob.lease_until: None if lease_seconds is None else t + dt.timedelta(seconds=lease_seconds),
    }).where((ProvisionJob.id == job_id) & (ProvisionJob.status == RUNNING)
             & (ProvisionJob.claimed_by == worker_id[:100])).returning(ProvisionJob.id)
    return bool(rows)


async def _keep_lease(job_id: int, worker_id: str, lease_seconds: float) -> None:
    """Beside a running stage: renew the lease at a third of its length, so a long command keeps its job."""
    while True:
        await asyncio.sleep(max(lease_seconds / 3, 0.05))
        try:
            if not await _write(job_id, worker_id, {}, lease_seconds):
                return
        except Exception:  # a database hiccup: the next renewal tries again, the lease has time left
            log.warning("provision job %s: lease not renewed", job_id, exc_info=True)


class _LeaseLost(Exception):
    pass


async def run_job(settings, job: dict, worker_id: str, *, lease_seconds: float = LEASE_SECONDS) -> dict:
    """Run the stages of a job this worker claimed that are not done yet, in order; returns the job as it ends.

    A failure records the stage, its error and output, logs it and marks the job failed; done stages are not run
    again when the job is retried or taken again after a restart. A job that is done, or not this worker's
    (another took it after the lease ran out), is returned as it is, unchanged."""
    job = await _job(job["id"])
    if job is None or job["status"] != RUNNING or job["claimed_by"] != worker_id[:100]:
        return job
    stages = _stages(job)
    provisioner = provisioner_for(settings)
    subject = None
    for key, _label in STAGES:
        if (stages.get(key) or {}).get("status") == DONE:
            continue
        started = now()
        stages[key] = {"status": RUNNING, "output": "", "started_at": _iso(started), "finished_at": None}
        if not await _write(job["id"], worker_id, {ProvisionJob.stage: key, ProvisionJob.stages: stages},
                            lease_seconds):
            return await _job(job["id"])
        keeper = asyncio.create_task(_keep_lease(job["id"], worker_id, lease_seconds))
        try:
            if subject is None:
                subject = await load_subject(job["connection"])
            ctx = Context(settings, job, subject, stages)
            stage = provisioner[key]
            outputs = [await stage.work(ctx)] if stage.work else []
            async with db.transaction():
                if stage.commit:
                    outputs.append(await stage.commit(ctx))
                stages[key] = {**ctx.extra, "status": DONE, "output": "\n".join(outputs),
                               "started_at": _iso(started), "finished_at": _iso(now())}
                if not await _write(job["id"], worker_id, {ProvisionJob.stages: stages}, lease_seconds):
                    raise _LeaseLost()
        except _LeaseLost:
            log.warning("provision job %s: lease lost during stage %s; another process has the job", job["id"], key)
            return await _job(job["id"])
        except Exception as exc:
            return await _fail(job, worker_id, stages, key, started, exc)
        except asyncio.CancelledError:  # the process is stopping: the job goes back to the queue at once
            await asyncio.shield(_release(job["id"], worker_id, stages, key))
            raise
        finally:
            keeper.cancel()
    await _write(job["id"], worker_id, {
        ProvisionJob.status: DONE, ProvisionJob.stage: "", ProvisionJob.error: "", ProvisionJob.finished_at: now(),
        ProvisionJob.stages: stages}, None)
    log.info("provision job %s (connection %s) done", job["id"], job["connection"])
    return await _job(job["id"])


async def _release(job_id: int, worker_id: str, stages: dict, key: str) -> None:
    """Give an interrupted job back (queued, its interrupted stage to run again), so that the next process to
    start takes it without waiting for the lease to run out; a stopping process must not hang on it."""
    stages.pop(key, None)
    try:
        await asyncio.wait_for(_write(job_id, worker_id, {
            ProvisionJob.status: QUEUED, ProvisionJob.stage: "", ProvisionJob.claimed_by: "",
            ProvisionJob.stages: stages}, None), timeout=5)
        log.warning("provision job %s: interrupted during stage %s, queued again", job_id, key)
    except Exception:  # the lease runs out instead
        log.warning("provision job %s: interrupted during stage %s, left to its lease", job_id, key, exc_info=True)


async def _fail(job: dict, worker_id: str, stages: dict, key: str, started: dt.datetime,
                exc: BaseException) -> dict:
    message = str(exc) if isinstance(exc, StageError) else f"Внутренняя ошибка: {type(exc).__name__}: {exc}"
    log.exception("provision job %s (connection %s): stage %s failed: %s", job["id"], job["connection"], key,
                  message, exc_info=exc)
    stages[key] = {"status": FAILED, "output": getattr(exc, "output", "") or "", "started_at": _iso(started),
                   "finished_at": _iso(now()), "error": message}
    written = await _write(job["id"], worker_id, {
        ProvisionJob.status: FAILED, ProvisionJob.stage: key, ProvisionJob.error: message,
        ProvisionJob.stages: stages, ProvisionJob.finished_at: now()}, None)
    if written:
        await record("provision.failed", object_type="connection", object_id=job["connection"],
                     details={"job": job["id"], "stage": key, "error": message})
    return await _job(job["id"])


async def run_pending(settings, worker_id: str, *, lease_seconds: float = LEASE_SECONDS) -> int:
    """Claim and run jobs until none is left; how many were run (to the end or to a failure)."""
    count = 0
    while (job := await claim(worker_id, lease_seconds)) is not None:
        await run_job(settings, job, worker_id, lease_seconds=lease_seconds)
        count += 1
    return count


async def retry(job_id: int, *, actor: dict | None = None, origin: Origin = SYSTEM) -> dict:
    """A failed job queued again (its failed stage waits again; done stages stay done). A job that is not failed
    is returned as it is — a second click changes nothing."""
    job = await _job(job_id)
    if job is None:
        raise ProvisionError("Такого развёртывания нет.")
    stages = {k: v for k, v in _stages(job).items() if (v or {}).get("status") == DONE}
    rows = await ProvisionJob.update({
        ProvisionJob.status: QUEUED, ProvisionJob.error: "", ProvisionJob.claimed_by: "",
        ProvisionJob.lease_until: None, ProvisionJob.finished_at: None, ProvisionJob.stages: stages,
        ProvisionJob.updated_at: now(),
    }).where((ProvisionJob.id == job_id) & (ProvisionJob.status == FAILED)).returning(ProvisionJob.id)
    if rows:
        who = ({"actor_type": "staff", "actor_id": actor["id"], "actor_label": actor["email"]} if actor else {})
        await record("provision.retried", **who, object_type="connection", object_id=job["connection"],
                     origin=origin, details={"job": job_id, "stage": job["stage"], "error": job["error"],
                                             "attempts": job["attempts"]})
    return await _job(job_id)


# --------------------------------------------------------------------------- the view


def _time(value: str | None) -> str:
    if not value:
        return ""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return datetime_ru(parsed)


def job_view(job: dict | None) -> dict[str, Any]:
    """The context of ``connection/_provision.html``: ``{"provision": …}`` — each stage with its label and state,
    «N из 4», the error, the outputs and times (Moscow); ``active`` — still queued or running (the page keeps
    polling). One key, so that a page can spread it into its own context without clashes."""
    stages = _stages(job) if job else {}
    rows = []
    for key, label in STAGES:
        item = stages.get(key) or {}
        state = item.get("status") or "pending"
        if state not in STATE_LABELS:
            state = "pending"
        rows.append({"key": key, "label": label, "state": state, "state_label": STATE_LABELS[state],
                     "output": item.get("output") or "", "error": item.get("error") or "",
                     "started_at": _time(item.get("started_at")), "finished_at": _time(item.get("finished_at"))})
    done = sum(1 for row in rows if row["state"] == DONE)
    status = job["status"] if job else None
    return {"provision": {
        "exists": job is not None,
        "id": job["id"] if job else None,
        "connection_id": job["connection"] if job else None,
        "status": status,
        "status_label": JOB_LABELS.get(status, status or ""),
        "stages": rows,
        "done": done,
        "total": len(STAGES),
        "progress": f"{done} из {len(STAGES)}",
        "percent": round(100 * done / len(STAGES)),
        "error": job["error"] if job else "",
        "failed_stage": STAGE_LABELS.get(job["stage"], "") if job and status == FAILED else "",
        "attempts": job["attempts"] if job else 0,
        "created_at": datetime_ru(job["created_at"]) if job else "",
        "finished_at": datetime_ru(job["finished_at"]) if job and job["finished_at"] else "",
        "active": status in (QUEUED, RUNNING),
        "failed": status == FAILED,
    }}


# --------------------------------------------------------------------------- staff: «Повторить»


class StaffProvisionController(Controller):
    """«Повторить развёртывание» in the staff console (registered in portal/app.py)."""

    path = "/staff/connections"
    guards = [staff_guard]
    dependencies = {"staff": Provide(current_staff, sync_to_thread=False)}

    @post("/{connection_id:int}/provision/retry", name="staff_provision_retry")
    async def retry_provision(self, request: Request, connection_id: FromPath[int],
                              staff: NamedDependency[dict]) -> object:
        job = await job_of(connection_id)
        if job is None:
            raise NotFoundException()
        await retry(job["id"], actor=staff, origin=origin_of(request))
        return redirect("/staff/connections")
