"""Provisioning without a database: the view of a job and its partial, the site's link, the command's run (real
subprocesses), its environment and bounded output."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape

from portal.connection import provisioners
from portal.connection.provision import STAGES, job_view
from portal.connection.provisioners import (
    StageError, Subject, bounded, city_of, command_env, run_command, seal_directory, site_url,
)
from portal.settings import Settings

TEMPLATES = Path(__file__).resolve().parents[2] / "portal" / "templates"
UTC = dt.timezone.utc


def job(**values) -> dict:
    t = dt.datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    return {"id": 7, "connection": 3, "status": "queued", "stage": "", "stages": "{}", "attempts": 0,
            "claimed_by": "", "lease_until": None, "error": "", "created_at": t, "updated_at": t,
            "finished_at": None, **values}


def render(view: dict, **context) -> str:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True))
    return env.get_template("connection/_provision.html").render(**view, **context)


def test_stages_in_order_with_russian_labels():
    assert STAGES == (("server", "Сервер"), ("components", "Компоненты"), ("databases", "Базы данных"),
                      ("finalisation", "Завершение"))


def test_view_of_no_job_and_of_a_queued_one():
    view = job_view(None)["provision"]
    assert not view["exists"] and view["progress"] == "0 из 4" and not view["active"]
    assert [s["state_label"] for s in view["stages"]] == ["ожидает"] * 4
    html = render(job_view(None))
    assert 'id="provision"' in html and "Развёртывание начнётся" in html

    view = job_view(job())["provision"]
    assert view["active"] and view["status_label"] == "в очереди" and view["created_at"] == "02.12.2026 12:30"


def test_view_of_a_failed_job_shows_the_error_and_the_output_escaped():
    stages = {
        "server": {"status": "done", "output": "Домен указывает на сервер", "started_at": "2026-12-02T09:30:00+00:00",
                   "finished_at": "2026-12-02T09:30:01+00:00"},
        "components": {"status": "failed", "output": "<script>alert(1)</script>\nFATAL & more",
                       "started_at": "2026-12-02T09:31:00+00:00", "finished_at": "2026-12-02T09:32:00+00:00",
                       "error": "Команда развёртывания завершилась с кодом 2 (этап components)."},
    }
    failed = job(status="failed", stage="components", stages=stages, attempts=2,
                 error="Команда развёртывания завершилась с кодом 2 (этап components).",
                 finished_at=dt.datetime(2026, 12, 2, 9, 32, tzinfo=UTC))
    view = job_view(failed)["provision"]
    assert view["failed"] and not view["active"] and view["failed_stage"] == "Компоненты"
    assert view["progress"] == "1 из 4" and view["done"] == 1 and view["attempts"] == 2
    assert [s["state"] for s in view["stages"]] == ["done", "failed", "pending", "pending"]
    assert [s["state_label"] for s in view["stages"]] == ["готово", "ошибка", "ожидает", "ожидает"]
    assert view["stages"][0]["started_at"] == "02.12.2026 12:30"  # Moscow
    assert view["stages"][1]["finished_at"] == "02.12.2026 12:32"

    html = render(job_view(failed))
    assert html.count('id="provision"') == 1
    assert "hx-" not in html  # the including page polls it
    assert "<script>alert(1)" not in html
    assert "<pre class=\"command\">&lt;script&gt;alert(1)&lt;/script&gt;\nFATAL &amp; more</pre>" in html
    assert "Ошибка на этапе «Компоненты»: Команда развёртывания завершилась с кодом 2" in html
    assert "1 из 4" in html and "начат 02.12.2026 12:31, окончен 02.12.2026 12:32 МСК" in html
    assert "/provision/retry" not in html  # the button is the staff console's, on request
    staff = render(job_view(failed), provision_retry=True, csrf_input="<input name=_csrf_token>")
    assert 'action="/staff/connections/3/provision/retry"' in staff and "<input name=_csrf_token>" in staff


def test_running_stage_is_shown_running():
    stages = {"server": {"status": "running", "output": "", "started_at": "2026-12-02T09:30:00+00:00",
                         "finished_at": None}}
    view = job_view(job(status="running", stage="server", stages=stages))["provision"]
    assert view["active"] and view["stages"][0]["state_label"] == "выполняется"
    assert view["stages"][0]["finished_at"] == ""


def test_site_url_keeps_scheme_and_port_of_the_base_url():
    assert site_url(Settings(base_url="http://127.0.0.1:8000"), "coop.localhost") == "http://coop.localhost:8000"
    https = Settings(base_url="https://portal.example.ru")
    assert site_url(https, "xn--j1acibp.xn--p1ai") == "https://xn--j1acibp.xn--p1ai"


def test_city_of_a_legal_address():
    assert city_of("117997, г. Москва, ул. Вавилова, д. 19") == "г. Москва"
    assert city_of("170100, г.Тверь, ул. Советская") == "г.Тверь"
    assert city_of("Московская обл., д. Берёзки") == ""


def test_bounded_keeps_the_beginning_and_the_end():
    assert bounded("short") == "short"
    text = "BEGIN" + "x" * 50_000 + "END"
    kept = bounded(text, 1000)
    assert kept.startswith("BEGIN") and kept.endswith("END") and len(kept) < 1100
    assert "пропущено символов: 49008" in kept


def subject() -> Subject:
    connection = {"id": 5, "domain": "xn--j1acibp.xn--p1ai", "hosting": "hosted", "description": "Закупки",
                  "fee_entrance_org": 100_050, "fee_share_org": 2, "fee_entrance_ind": 3, "fee_share_ind": 4}
    requisites = {key: "" for key in provisioners.REQUISITE_KEYS}
    requisites.update(org_full_name="Потребительский кооператив «Колос»", org_short_name="ПК «Колос»",
                      inn="7707083893")
    return Subject(connection, {"id": 1, "email": "chair@kolos.example", "display_name": ""}, requisites)


def test_command_env_has_the_cooperatives_data(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", "do-not-pass-me")
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql://portal:secret@db/portal")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    settings = Settings(data_dir=tmp_path, base_url="https://portal.example.ru")
    env = command_env(settings, subject(), "databases")
    assert env["PORTAL_PROVISION_STAGE"] == "databases"
    assert env["COOP_DOMAIN"] == "xn--j1acibp.xn--p1ai" and env["COOP_DOMAIN_UNICODE"] == "колос.рф"
    assert env["COOP_FEE_ENTRANCE_ORG"] == "100050" and env["COOP_FEE_SHARE_IND"] == "4"
    assert env["COOP_NAME"] == "Потребительский кооператив «Колос»" and env["COOP_INN"] == "7707083893"
    assert env["COOP_URL"] == "https://xn--j1acibp.xn--p1ai" and env["COOP_MEMBER_EMAIL"] == "chair@kolos.example"
    assert env["COOP_SEAL_DIR"] == str(seal_directory(settings, "7707083893"))
    assert env["PATH"] == os.environ["PATH"]
    assert env["PORTAL_BASE_URL"] == "https://portal.example.ru"
    assert all(isinstance(v, str) for v in env.values())
    assert "PORTAL_SECRET_KEY" not in env and "PORTAL_DATABASE_URL" not in env  # the portal's secrets stay
    assert env["SSH_AUTH_SOCK"] == "/tmp/agent.sock"  # what a deploy tool needs passes


async def test_run_command_exit_status_and_output(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import os, sys\nprint('out', os.environ['X'])\nprint('err', file=sys.stderr)\nsys.exit(4)\n")
    code, output = await run_command([sys.executable, str(script)], {**os.environ, "X": "икс"}, 30)
    assert code == 4 and "out икс" in output and "err" in output

    code, output = await run_command([sys.executable, "-c", "print('x' * 500_000)"], dict(os.environ), 30)
    assert code == 0 and len(output) < provisioners.OUTPUT_LIMIT + 200 and "пропущено" in output

    with pytest.raises(StageError, match="не запускается"):
        await run_command([str(tmp_path / "missing")], dict(os.environ), 5)


async def test_run_command_timeout_kills_the_command_and_its_children(tmp_path):
    marker = tmp_path / "child-alive"
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3); open({str(marker)!r}, 'w').close()"])
        print("started", flush=True)
        time.sleep(60)
    """))
    started = time.monotonic()
    code, output = await run_command([sys.executable, str(script)], dict(os.environ), 1.0)
    assert code is None and "started" in output
    assert time.monotonic() - started < 10
    await asyncio.sleep(3.5)
    assert not marker.exists()  # the child was killed with it


def test_site_ready_mail():
    from portal.mail.render import render_mail

    subject, body = render_mail(Settings(base_url="https://portal.example.ru"), "mail/site_ready.txt", {
        "name": "Мария Иванова", "cooperative": "ПК «Колос»", "domain": "колос.рф",
        "url": "https://xn--j1acibp.xn--p1ai/"})
    assert subject == "Сайт ПК «Колос» готов: колос.рф"
    assert "Здравствуйте, Мария Иванова!" in body and "\nhttps://xn--j1acibp.xn--p1ai/\n" in body
    assert "https://portal.example.ru/cabinet/connection" in body and "ключом установки" in body
