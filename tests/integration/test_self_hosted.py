"""A self-hosted cooperative: two real `portal serve` processes — the operator, and the cooperative's own instance
started with PORTAL_OPERATOR_URL and a token from the cabinet (SPEC §9, issue #10)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from portal.connection.tables import ApiToken
from tests.conftest import csrf_token
from tests.integration.test_cli import PORTAL, stop_serve
from tests.integration.test_operator_api import DESCRIPTION, issue, signed_connection, token_in
from tests.support.ports import free_port

DOMAIN = "rassvet.localhost"


def serve(workdir: Path, port: int, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, Path]:
    """`portal serve` on ``port`` with ``env`` over the test's environment; its output goes to a log file."""
    log = workdir / f"serve-{port}-{time.monotonic_ns()}.log"
    full_env = {**os.environ, "PORTAL_DATABASE_URL": "", "PORTAL_ACCESS_LOG": "0", **env}
    if "PORTAL_BASE_URL" not in env:  # the operator's own: http://127.0.0.1:<port>
        full_env.pop("PORTAL_BASE_URL", None)
    proc = subprocess.Popen([PORTAL, "serve", "--port", str(port), *args], env=full_env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, text=True)
    return proc, log


def wait_ready(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "portal did not start:\n" + log.read_text()
        time.sleep(0.2)


def wait_exit(proc: subprocess.Popen, log: Path, seconds: float = 90) -> int:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("the instance did not stop by itself:\n" + log.read_text())


def get(port: int, path: str, host: str) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def instance_env(workdir: Path, port: int, operator_port: int, token: str, name: str = "instance") -> dict[str, str]:
    return {"PORTAL_DATA_DIR": str(workdir / name), "PORTAL_SITE_DIR": str(workdir / "instance-site"),
            "PORTAL_BASE_URL": f"http://{DOMAIN}:{port}", "PORTAL_OPERATOR_URL": f"http://127.0.0.1:{operator_port}",
            "PORTAL_OPERATOR_TOKEN": token}


def cooperatives(data_dir: Path) -> list[tuple]:
    with sqlite3.connect(data_dir / "portal.sqlite3") as conn:
        return conn.execute("SELECT name_short, domain, is_operator, inn, fee_share_org, description, status "
                            "FROM cooperative WHERE is_operator = 0").fetchall()


def refused(proc: subprocess.Popen, log: Path) -> str:
    """The instance stopped by itself, with an error status; its output."""
    assert wait_exit(proc, log) != 0
    return log.read_text()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # two real servers: once is enough (the operator's
async def test_an_instance_takes_its_cooperative_from_the_operator(client, settings, tmp_path):  # API is on both)
    # The operator's database, prepared through the portal itself: a member with a signed self-hosted agreement
    # and a token from the cabinet. The operator process then serves that same database.
    member = await signed_connection(client, email="coop@example.org", inn="7707083893", domain=DOMAIN)
    token = token_in((await issue(client)).text)
    operator_env = {"PORTAL_DATA_DIR": str(settings.data_dir), "PORTAL_DATABASE_URL": settings.database_url,
                    "PORTAL_SECRET_KEY": settings.secret_key, "PORTAL_SITE_DIR": str(tmp_path / "operator-site")}
    operator_port, port = free_port(), free_port()
    operator, operator_log = serve(tmp_path, operator_port, operator_env, "--workers", "1")
    instance = None
    try:
        wait_ready(operator, operator_port, operator_log)

        # A wrong token: the instance does not start, and says why in Russian; it stored no cooperative.
        wrong = instance_env(tmp_path, port, operator_port, token[:-2] + "xx", name="wrong")
        output = refused(*serve(tmp_path, port, wrong, "--workers", "1"))
        assert "Кооператив не получен от оператора: Оператор не принял токен API (PORTAL_OPERATOR_TOKEN): " \
               "Токен API не действует: он неверный или отозван" in output
        assert cooperatives(tmp_path / "wrong") == []
        # The right token, but a host the agreement does not name: refused too.
        other = {**instance_env(tmp_path, port, operator_port, token, name="wrong"),
                 "PORTAL_BASE_URL": f"http://zarya.localhost:{port}"}
        output = refused(*serve(tmp_path, port, other, "--workers", "1"))
        assert "Оператор не знает подключения с доменом zarya.localhost для этого токена" in output

        # Two workers: each takes the cooperative at its start, and there is still one cooperative.
        instance, log = serve(tmp_path, port, instance_env(tmp_path, port, operator_port, token), "--workers", "2")
        wait_ready(instance, port, log)
        status, page = get(port, "/", f"{DOMAIN}:{port}")
        assert status == 200, page
        assert "ПК «Рассвет»" in page and DESCRIPTION in page
        loopback = get(port, "/", f"127.0.0.1:{port}")[1]  # loopback is the instance's own site too
        assert "ПК «Рассвет»" in loopback and DESCRIPTION in loopback
        assert get(port, "/staff/login", f"{DOMAIN}:{port}")[0] == 404  # no operator's console on it
        assert get(port, "/", f"other.localhost:{port}")[0] == 404
        assert cooperatives(tmp_path / "instance") == [("ПК «Рассвет»", DOMAIN, 0, "7707083893", 200050, DESCRIPTION,
                                                        "installing")]
        row = await ApiToken.select(ApiToken.last_used_at).where(ApiToken.member == member["id"]).first()
        assert row["last_used_at"] is not None
        stop_serve(instance)

        # The operator down for a while: the installed site keeps working with what it took before.
        stop_serve(operator)
        instance, log = serve(tmp_path, port, instance_env(tmp_path, port, operator_port, token), "--workers", "1")
        wait_ready(instance, port, log)
        assert "ПК «Рассвет»" in get(port, "/", f"{DOMAIN}:{port}")[1]
        stop_serve(instance)
        assert "оператор недоступен, сайт работает с данными прошлого запуска" in log.read_text()

        # The token revoked in the cabinet: the instance refuses to start, saying why.
        operator, operator_log = serve(tmp_path, operator_port, operator_env, "--workers", "1")
        wait_ready(operator, operator_port, operator_log)
        token_id = (await ApiToken.select(ApiToken.id).where(ApiToken.member == member["id"]).first())["id"]
        r = await client.post(f"/cabinet/connection/tokens/{token_id}/revoke",
                              data={"_csrf_token": await csrf_token(client)}, headers={"HX-Request": "true"})
        assert r.status_code == 200
        instance, log = serve(tmp_path, port, instance_env(tmp_path, port, operator_port, token), "--workers", "1")
        output = refused(instance, log)
        instance = None
        assert "Кооператив не получен от оператора: Оператор не принял токен API (PORTAL_OPERATOR_TOKEN)" in output
        assert "отозван" in output
    finally:
        for proc in (instance, operator):
            if proc is not None and proc.poll() is None:
                stop_serve(proc)
