"""The `portal` command as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.ports import free_port

PORTAL = str(Path(sys.executable).with_name("portal"))


def run(args, env, **kw):
    return subprocess.run([PORTAL, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120, **kw)


def test_production_without_secret_refuses_to_start(tmp_path):
    r = run(["serve"], {"PORTAL_ENV": "production", "PORTAL_DATA_DIR": str(tmp_path), "PORTAL_SECRET_KEY": ""})
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "PORTAL_SECRET_KEY" in lines[0] and "production" in lines[0]
    assert not (tmp_path / "portal.sqlite3").exists()


def test_dev_secret_is_generated_once_and_kept(tmp_path):
    from portal.settings import load_settings

    first = load_settings({"PORTAL_DATA_DIR": str(tmp_path)})
    second = load_settings({"PORTAL_DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key and len(first.secret_key) > 40
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrate_and_create_staff(tmp_path, backend, request):
    env = {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_DATABASE_URL": ""}
    if backend == "postgres":
        server = request.getfixturevalue("pg_server")
        env["PORTAL_DATABASE_URL"] = server.create_database(f"cli_{os.getpid()}")
    r = run(["migrate"], env)
    assert r.returncode == 0, r.stderr
    r = run(["migrate"], env)  # a second time: nothing to do, still fine
    assert r.returncode == 0, r.stderr
    r = run(["create-staff", "Boss@Example.org", "--password", "long enough pw"], env)
    assert r.returncode == 0, r.stderr
    assert "boss@example.org" not in r.stderr
    r = run(["create-staff", "x@example.org", "--password", "short"], env)
    assert r.returncode == 1 and "не короче 8" in r.stderr
    # Prompted when --password is omitted.
    r = run(["create-staff", "prompt@example.org"], env, input="another long pw\nanother long pw\n")
    assert r.returncode == 0, r.stderr


def start_serve(tmp_path, site, *args: str, **env: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    full_env = {**os.environ, "PORTAL_DATA_DIR": str(tmp_path / "data"), "PORTAL_SITE_DIR": str(site),
                "PORTAL_DATABASE_URL": "", **env}
    proc = subprocess.Popen([PORTAL, "serve", "--port", str(port), *args], env=full_env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                assert r.read() == b'{"status":"ok"}'
                return proc, base, log
        except OSError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "portal did not start"
            time.sleep(0.2)


def stop_serve(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=20)


def test_serve_answers_healthz_and_pages(tmp_path, session_site):
    proc, base, log = start_serve(tmp_path, session_site, "--workers", "2")
    try:
        for path, text in [("/", "Кооперативная экономика"), ("/docs/", "ВОСХОД"), ("/staff/login", "Вход для сотрудников")]:
            with urllib.request.urlopen(base + path, timeout=5) as r:
                assert r.status == 200
                assert text in r.read().decode()
    finally:
        stop_serve(proc)
    output = log.read_text()
    assert "granian, процессов: 2" in output and "worker-2" in output
    assert '"GET /docs/ HTTP/1.1" 200' in output  # the access log, with the path as requested
    assert "Granian shutdown completed" in output


def _submit_connect_form(base: str, forwarded_for: str, inn: str) -> None:
    import httpx

    from tests.integration.test_connect import VALID

    with httpx.Client(base_url=base) as c:
        c.get("/connect")
        r = c.post("/connect", data={**VALID, "inn": inn, "_csrf_token": c.cookies["csrftoken"]},
                   headers={"X-Forwarded-For": forwarded_for})
        assert r.status_code == 303, r.text


def _stored_ips(tmp_path) -> list[str]:
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "portal.sqlite3") as conn:
        return [row[0] for row in conn.execute("SELECT ip FROM connect_request ORDER BY id")]


def test_client_address_comes_from_trusted_proxies_only(tmp_path, session_site):
    """Behind a proxy the visitor's address is the one the proxy saw; a header from anyone else is ignored."""
    proc, base, log = start_serve(tmp_path, session_site, "--workers", "1", PORTAL_ACCESS_LOG="0",
                                  PORTAL_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1")
    try:
        _submit_connect_form(base, "198.51.100.23, 10.1.2.3", "7707083893")
    finally:
        stop_serve(proc)
    assert _stored_ips(tmp_path) == ["198.51.100.23"]
    assert "GET /connect" not in log.read_text()  # PORTAL_ACCESS_LOG=0
    proc, base, _ = start_serve(tmp_path, session_site, "--workers", "1", PORTAL_TRUSTED_PROXIES="10.0.0.1")
    try:
        _submit_connect_form(base, "198.51.100.99", "7736050003")  # the peer, 127.0.0.1, is not a trusted proxy
    finally:
        stop_serve(proc)
    assert _stored_ips(tmp_path) == ["198.51.100.23", "127.0.0.1"]


def test_production_refuses_operator_requisites_that_fail_their_checksums(tmp_path):
    from portal.settings import SettingsError, load_settings

    env = {"PORTAL_ENV": "production", "PORTAL_SECRET_KEY": "s" * 40, "PORTAL_DATA_DIR": str(tmp_path)}
    assert load_settings(env).operator.inn == "7701000001"  # the samples are valid
    with pytest.raises(SettingsError, match="PORTAL_OPERATOR_INN"):
        load_settings({**env, "PORTAL_OPERATOR_INN": "7701000002"})
    with pytest.raises(SettingsError, match="PORTAL_OPERATOR_SETTLEMENT_ACCOUNT"):
        load_settings({**env, "PORTAL_OPERATOR_SETTLEMENT_ACCOUNT": "40703810000000000001"})
