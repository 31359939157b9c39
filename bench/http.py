"""HTTP throughput of the portal against a bare Litestar app, on the same server (granian) and worker count.

    .venv/bin/python bench/http.py [--rounds 3] [--duration 10] [--db sqlite|postgres|both] [--workers N]
                                   [--quick] [--write]

Both servers run with the access log on (into a file). wrk (2 threads, 50 connections) loads one target at a
time; the targets alternate in every round and the table shows the median over the rounds: req/s, p50, p99,
answers that were not 200 (must be 0: a wrk Lua script counts every status >= 300), socket errors, and the
ratio of req/s to the bare app's page. The portal runs in production mode on SQLite and on a throwaway
PostgreSQL, with a signed-up member (three signed PDFs: the consent, the application, the user agreement) and a staff account made in-process beforehand.
Memory: RSS of the portal's processes (granian main, its workers, the mail sender) at start, after the rounds
and after 50 000 more requests on / and /connect.

Goals: HTML pages and /docs/ at least 0.5 of the bare page; /staff/, /cabinet and the PDF at least 0.3; p99
under 100 ms on every page; each process under 250 MB and flat. --write keeps the tables in bench/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory would come first on sys.path and its name shadow the standard http.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import http.client  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402

from tests.support.ports import free_port  # noqa: E402

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SECRET_KEY = "bench-secret-key-only-for-this-benchmark-0123456789"
STAFF_EMAIL, STAFF_PASSWORD = "bench-staff@voskhod.example", "bench staff password 1"
WRK_THREADS, WRK_CONNECTIONS = 2, 50
MEMORY_REQUESTS = 50_000
P99_GOAL_MS = 100
RSS_GOAL_MB = 250
RESULTS = Path(__file__).with_name("RESULTS.md")

# label, server, path, session ("staff", "member" or None), goal (least ratio to the bare page) or None
TARGETS = [
    ("bare /", "bare", "/", None, None),
    ("bare /text", "bare", "/text", None, None),
    ("/", "portal", "/", None, 0.5),
    ("/connect", "portal", "/connect", None, 0.5),
    ("/docs/", "portal", "/docs/", None, 0.5),
    ("/healthz", "portal", "/healthz", None, None),
    ("/pricing?registrations=80&packages=60", "portal", "/pricing?registrations=80&packages=60", None, 0.5),
    ("/staff/", "portal", "/staff/", "staff", 0.3),
    ("/staff/documents/{id} (PDF)", "portal", "/staff/documents/{document_id}", "staff", 0.3),
    ("/cabinet", "portal", "/cabinet", "member", 0.3),
]

# wrk counts only 4xx/5xx as failures; this counts redirects too.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not_ok = 0 end
function response(status, headers, body)
  if status >= 300 then not_ok = not_ok + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("not_ok") end
  io.write(string.format("Status >= 300: %d\\n", total))
end
"""


# --- wrk ---------------------------------------------------------------------------------------------------

def run_wrk(url: str, seconds: float, script: Path, cookie: str | None = None) -> dict:
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", "10s", "-s", str(script)]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    proc = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed on {url}:\n{proc.stdout}\n{proc.stderr}")
    return parse_wrk(proc.stdout)


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def parse_wrk(output: str) -> dict:
    def number(pattern: str, default: float | None = None) -> float:
        m = re.search(pattern, output, re.MULTILINE)
        if m is None:
            if default is None:
                raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{output}")
            return default
        return float(m.group(1))

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": number(r"^Requests/sec:\s+([\d.]+)"),
        "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
        "requests": int(number(r"^\s+(\d+) requests in")),
        # the Lua count includes wrk's own "Non-2xx or 3xx" (which are 4xx and 5xx)
        "not_ok": int(max(number(r"^Status >= 300: (\d+)"), number(r"Non-2xx or 3xx responses: (\d+)", 0))),
        "errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


# --- servers -------------------------------------------------------------------------------------------------

def fetch(url: str, cookie: str | None = None) -> tuple[int, int]:
    """One GET, redirects not followed: the status (0 when nothing answers) and the body's size."""
    address, _, path = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(address, timeout=10)
    try:
        conn.request("GET", "/" + path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, len(response.read())
    except OSError:
        return 0, 0
    finally:
        conn.close()


def start_server(cmd: list[str], env: dict, log: Path, ready_url: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while fetch(ready_url)[0] != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"server did not start: {' '.join(cmd)}\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    """SIGINT (granian stops its workers, the portal its mail sender); the whole group is killed if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what this server started
    except ProcessLookupError:
        pass
    proc.wait()


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory(proc: subprocess.Popen) -> dict:
    sizes = [rss_mb(pid) for pid in process_tree(proc.pid)]
    sizes = [s for s in sizes if s > 0]
    return {"processes": len(sizes), "max": max(sizes, default=0.0), "total": sum(sizes)}


# --- data: a staff account and a member with three signed documents, made in-process -------------------------

def portal_environ(data_dir: Path, site_dir: Path, database_url: str, port: int, env: str) -> dict[str, str]:
    return {
        "PORTAL_ENV": env,
        "PORTAL_SECRET_KEY": SECRET_KEY,
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SITE_DIR": str(site_dir),
        "PORTAL_BASE_URL": f"http://{HOST}:{port}",
        "PORTAL_ACCESS_LOG": "1",
    }


def expect(response, status: int, what: str) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{what}: expected {status}, got {response.status_code}\n{response.text[:2000]}")


async def post_form(client, path: str, data: dict, **kwargs):
    if "csrftoken" not in client.cookies:
        await client.get("/")
    return await client.post(path, data={**data, "_csrf_token": client.cookies["csrftoken"]}, **kwargs)


def cookie_header(client) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)


async def sign_up_member(client, settings) -> None:
    """The joining journey: connect request, registration link, member key, application, signed package."""
    import hashlib

    from portal.applications.service import CONSENT, JOIN_PACKAGE
    from portal.connect import service as connect
    from tests.factories import ORG_APPLICATION, MemberKey, form_value, signature_png

    email = "maria@example.org"
    r = await post_form(client, "/connect", {
        "coop_name": "Потребительский кооператив «Рассвет»", "inn": "7707083893",
        "contact_name": "Иванова Мария Петровна", "email": email, "phone": "8 (912) 345-67-89",
        "domain": "rassvet.example", "union_member": "yes", "message": "", "consent": "on"})
    expect(r, 303, "POST /connect")
    [request] = await connect.list_requests("new")
    token = await connect.send_registration_link(settings, request["id"], {"id": 0, "email": STAFF_EMAIL})
    key = MemberKey()
    r = await client.get(f"/join/{token}")
    # The ПЭП offer accepted by its own request, before the key (as «Принять оферту» posts it).
    r = await post_form(client, f"/join/{token}/offer", {
        "pep_offer": "on", "offer_sha256": form_value(r.text, "offer_sha256"),
        "offer_context_sha256": form_value(r.text, "offer_context_sha256")})
    expect(r, 303, "POST /join/{token}/offer")
    r = await post_form(client, f"/join/{token}", {"email": email, "public_key": key.public_b64,
                                                   "key_proof": key.proof(email), "saved": "on"})
    expect(r, 303, "POST /join/{token}")
    expect(await post_form(client, "/cabinet/application", ORG_APPLICATION), 303, "POST /cabinet/application")
    png = signature_png()
    image_hash = hashlib.sha256(png).hexdigest()
    # The personal-data consent, its own act before the package.
    r = await client.get("/cabinet/sign")
    expect(r, 200, "GET /cabinet/sign")
    consent_hash = form_value(r.text, f"hash_{CONSENT}")
    r = await post_form(client, "/cabinet/consent", {
        "nonce": form_value(r.text, "nonce"), "consent": "on", f"hash_{CONSENT}": consent_hash,
        f"sig_{CONSENT}": key.sign(f"coopdoc:v1:{consent_hash}:{image_hash}")},
        files={"signature_png": ("signature.png", png, "image/png")})
    expect(r, 303, "POST /cabinet/consent")
    r = await client.get("/cabinet/sign")
    expect(r, 200, "GET /cabinet/sign")
    fields = {"nonce": form_value(r.text, "nonce")}
    for template_id in JOIN_PACKAGE:
        document_hash = form_value(r.text, f"hash_{template_id}")
        fields[f"hash_{template_id}"] = document_hash
        fields[f"sig_{template_id}"] = key.sign(f"coopdoc:v1:{document_hash}:{image_hash}")
    r = await post_form(client, "/cabinet/sign", fields, files={"signature_png": ("signature.png", png, "image/png")})
    expect(r, 303, "POST /cabinet/sign")


async def prepare_data(environ: dict[str, str]) -> dict:
    """Migrate, create the users; returns the session cookies and a document id for the server's targets."""
    import httpx

    from portal import db
    from portal.app import create_app, startup
    from portal.documents.store import shutdown_pool
    from portal.documents.tables import Document
    from portal.settings import load_settings
    from portal.staff.service import create_staff

    settings = load_settings({**environ, "PORTAL_ENV": "dev"})
    db.configure_database(settings)
    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints every migration
        await db.migrate()
    app = create_app(settings, run_mail_sender=False)  # before startup(): it points the tables at a new engine
    await startup(settings)
    try:
        await create_staff(STAFF_EMAIL, STAFF_PASSWORD)
        transport = httpx.ASGITransport(app=app, client=(HOST, 50000))
        async with httpx.AsyncClient(transport=transport, base_url=environ["PORTAL_BASE_URL"]) as member, \
                httpx.AsyncClient(transport=transport, base_url=environ["PORTAL_BASE_URL"]) as staff:
            await sign_up_member(member, settings)
            r = await post_form(staff, "/staff/login", {"email": STAFF_EMAIL, "password": STAFF_PASSWORD,
                                                        "next": "/staff/"})
            expect(r, 303, "POST /staff/login")
            document = await Document.select(Document.id).order_by(Document.id).first()
            return {"staff": cookie_header(staff), "member": cookie_header(member), "document_id": document["id"]}
    finally:
        await db.stop(settings)
        await asyncio.to_thread(shutdown_pool)


# --- one database ----------------------------------------------------------------------------------------------

def bench_database(name: str, database_url: str, args, bare_port: int, site_dir: Path, work: Path,
                   script: Path) -> dict:
    port = free_port(HOST)
    data_dir = work / f"data-{name}"
    environ = portal_environ(data_dir, site_dir, database_url, port, "production")
    data = asyncio.run(prepare_data(environ))
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")} | environ
    log = work / f"portal-{name}.log"
    cmd = [str(BIN / "portal"), "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers)]
    print(f"\n{name}: portal on port {port}", flush=True)
    portal = start_server(cmd, server_env, log, f"http://{HOST}:{port}/healthz")
    try:
        ports = {"bare": bare_port, "portal": port}

        def request(server: str, path: str, session: str | None) -> tuple[str, str | None]:
            url = f"http://{HOST}:{ports[server]}{path.format(document_id=data['document_id'])}"
            return url, data[session] if session else None

        sizes = {}
        for label, server, path, session, _ in TARGETS:
            status, sizes[label] = fetch(*request(server, path, session))
            if status != 200:
                print(f"  warning: {label} answers {status}, not 200", flush=True)
        memory_start = memory(portal)
        for label, server, path, session, _ in TARGETS:  # warm-up, not counted
            url, cookie = request(server, path, session)
            run_wrk(url, 1, script, cookie)
        runs: dict[str, list[dict]] = {label: [] for label, *_ in TARGETS}
        for n in range(args.rounds):
            print(f"  round {n + 1}/{args.rounds}", flush=True)
            for label, server, path, session, _ in TARGETS:
                url, cookie = request(server, path, session)
                runs[label].append(run_wrk(url, args.duration, script, cookie))
        memory_rounds = memory(portal)
        soak = memory_phase(port, runs, script)
        memory_end = memory(portal)
    finally:
        stop_server(portal)
    return {"name": name, "runs": runs, "soak": soak, "sizes": sizes, "log": read_log(log),
            "memory": {"start": memory_start, "after rounds": memory_rounds,
                       f"after {MEMORY_REQUESTS:,} more requests".replace(",", " "): memory_end}}


def read_log(log: Path) -> dict:
    lines = log.read_text(errors="replace").splitlines()
    return {"access": sum('"GET ' in line for line in lines),
            "errors": sum("Traceback" in line or " ERROR " in line for line in lines)}


def memory_phase(port: int, runs: dict, script: Path) -> dict:
    """At least MEMORY_REQUESTS more requests, alternately on / and /connect, in runs of at most 10 s."""
    rates = {path: statistics.median(r["rps"] for r in runs[path]) for path in ("/", "/connect")}
    total = {"requests": 0, "not_ok": 0, "errors": 0}
    while total["requests"] < MEMORY_REQUESTS:
        for path, rate in rates.items():
            left = max(0, MEMORY_REQUESTS - total["requests"])
            seconds = min(10, max(2, math.ceil(left / 2 / max(rate, 1))))
            result = run_wrk(f"http://{HOST}:{port}{path}", seconds, script)
            rates[path] = result["rps"]
            for k in total:
                total[k] += result[k]
    return total


# --- output ----------------------------------------------------------------------------------------------------

def summarize(result: dict) -> tuple[str, list[str]]:
    """The table of one database and the goals it misses."""
    rows, misses = [], []
    medians = {label: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
               for label, runs in result["runs"].items()}
    bare = medians["bare /"]["rps"]
    header = f"{'target':<38} {'KB':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-200':>8} {'errors':>6} " \
             f"{'ratio':>6}  goal"
    rows.append(header)
    rows.append("-" * (len(header) + 22))
    for label, server, _, _, goal in TARGETS:
        m, runs = medians[label], result["runs"][label]
        not_ok, errors = sum(r["not_ok"] for r in runs), sum(r["errors"] for r in runs)
        ratio = m["rps"] / bare
        notes = []
        if goal is not None:
            ok = ratio >= goal
            notes.append(f"ratio ≥ {goal:.1f} {'ok' if ok else 'MISS'}")
            if not ok:
                misses.append(f"{result['name']} {label}: ratio {ratio:.2f} < {goal}")
        if server == "portal":
            ok = m["p99"] < P99_GOAL_MS
            notes.append(f"p99 < {P99_GOAL_MS} {'ok' if ok else 'MISS'}")
            if not ok:
                misses.append(f"{result['name']} {label}: p99 {m['p99']:.1f} ms")
        if not_ok or errors:
            notes.append("NOT ALL 200")
            misses.append(f"{result['name']} {label}: {not_ok} answers not 200, {errors} socket errors")
        rows.append(f"{label:<38} {result['sizes'][label] / 1024:>5.1f} {m['rps']:>8.1f} {m['p50']:>7.1f} "
                    f"{m['p99']:>7.1f} {not_ok:>8} {errors:>6} {ratio:>6.2f}  {', '.join(notes)}".rstrip())
    rows.append("")
    rows.append(f"{'portal memory (RSS)':<38} {'processes':>9} {'max MB':>7} {'total MB':>8}")
    for when, mem in result["memory"].items():
        rows.append(f"  {when:<36} {mem['processes']:>9} {mem['max']:>7.0f} {mem['total']:>8.0f}")
    mem = list(result["memory"].values())
    growth = round(mem[-1]["max"] - mem[1]["max"])
    ok = mem[-1]["max"] < RSS_GOAL_MB
    rows.append(f"  goal: each process < {RSS_GOAL_MB} MB {'ok' if ok else 'MISS'}; largest process grew "
                f"{growth:+d} MB during the last {result['soak']['requests']:,} requests".replace(",", " "))
    if not ok:
        misses.append(f"{result['name']}: a process uses {mem[-1]['max']:.0f} MB")
    soak = result["soak"]
    if soak["not_ok"] or soak["errors"]:
        misses.append(f"{result['name']} memory phase: {soak['not_ok']} answers not 200, {soak['errors']} errors")
    log = result["log"]
    rows.append(f"portal log: {log['access']} access-log lines, {log['errors']} lines with ERROR or Traceback")
    if log["errors"]:
        misses.append(f"{result['name']}: {log['errors']} errors in the server log")
    return "\n".join(rows), misses


def machine(load: float) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mem_kb = int(re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.MULTILINE).group(1))
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.MULTILINE)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()
    return [
        f"CPU: {model.group(1) if model else platform.processor()}, {os.cpu_count()} CPUs; "
        f"RAM {mem_kb / 1024 / 1024:.1f} GB",
        f"OS: {os_name.group(1) if os_name else platform.system()} (Linux {platform.release()})",
        f"load average before the run: {load:.1f}",
        f"Python {platform.python_version()}, granian {metadata.version('granian')}, "
        f"Litestar {metadata.version('litestar')}, wrk {wrk[1] if len(wrk) > 1 else '?'}",
    ]


def write_results(heading: str, text: str) -> None:
    intro = ("# HTTP benchmark results\n\n"
             "Written by `.venv/bin/python bench/http.py --write` (or `make bench BENCH_ARGS=--write`): the portal\n"
             "against a bare Litestar app on the same granian server and worker count; see `bench/http.py`.\n")
    content = RESULTS.read_text() if RESULTS.exists() else intro
    sections = [s.rstrip("\n") + "\n\n" for s in re.split(r"(?m)^(?=## )", content) if s.strip()]
    section = f"{heading}\n\n{text}\n\n"
    if any(s.startswith(heading + "\n") for s in sections):
        sections = [section if s.startswith(heading + "\n") else s for s in sections]
    else:
        sections.append(section)
    RESULTS.write_text("".join(sections).rstrip("\n") + "\n")
    print(f"\nwritten to {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per target and round")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="default: the CPU count")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 3 s")
    parser.add_argument("--write", action="store_true", help=f"keep the results in {RESULTS.name}")
    args = parser.parse_args()
    for name in ("httpx", "piccolo"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.quick:
        args.rounds, args.duration = 1, 3
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: bash scripts/ensure-system-packages.sh bench (make bench does it)")
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f}: the machine was busy in the last minute; while something else "
              f"runs, the figures are lower and noisier than on an idle machine", flush=True)

    from portal import docs_site

    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    results = []
    postgres = None
    try:
        print("building the documentation site…", flush=True)
        site_dir = work / "site"
        docs_site.build(site_dir)
        script = work / "status.lua"
        script.write_text(WRK_SCRIPT)
        bare_port = free_port(HOST)
        bare_cmd = [str(BIN / "granian"), "--interface", "asgi", "--host", HOST, "--port", str(bare_port),
                    "--workers", str(args.workers), "--access-log", "bench.bare_app:app"]
        bare = start_server(bare_cmd, dict(os.environ), work / "bare.log", f"http://{HOST}:{bare_port}/text")
        try:
            bare_memory = memory(bare)
            if args.db in ("sqlite", "both"):
                results.append(bench_database("SQLite", "", args, bare_port, site_dir, work, script))
            if args.db in ("postgres", "both"):
                from tests.support.postgres import start_postgres

                postgres = start_postgres()
                dsn = postgres.create_database("portal_bench")
                results.append(bench_database("PostgreSQL", dsn, args, bare_port, site_dir, work, script))
        finally:
            stop_server(bare)
            bare_log = read_log(work / "bare.log")
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)

    settings_line = (f"granian, {args.workers} workers for each app, access log on; wrk {WRK_THREADS} threads, "
                     f"{WRK_CONNECTIONS} connections; median of {args.rounds} round(s) × {args.duration:g} s "
                     f"per target")
    blocks, misses = [], []
    for result in results:
        table, missed = summarize(result)
        blocks.append(f"{result['name']} — {settings_line}\n\n{table}")
        misses += missed
    blocks.append(f"bare app: RSS at start {bare_memory['processes']} processes, max {bare_memory['max']:.0f} MB, "
                  f"total {bare_memory['total']:.0f} MB; log: {bare_log['access']} access-log lines, "
                  f"{bare_log['errors']} lines with ERROR or Traceback")
    blocks.append("all goals met" if not misses else "goals missed:\n" + "\n".join(f"  - {m}" for m in misses))
    report = "\n\n".join(blocks)
    print("\n" + report)
    if args.write:
        today = datetime.date.today().isoformat()
        lines = machine(load)
        heading = f"## {today} — {lines[0].split(';')[0].removeprefix('CPU: ')}"
        command = " ".join(["bench/http.py", *sys.argv[1:]])
        text = "\n".join(f"- {line}" for line in [*lines, f"command: `{command}`"])
        write_results(heading, f"{text}\n\n```text\n{report}\n```")


if __name__ == "__main__":
    main()
