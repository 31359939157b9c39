"""A throw-away PostgreSQL server for the tests.

    server = start_postgres(tmp_path)
    server.create_database("portal_test")
    dsn = server.dsn("portal_test")   # postgresql://postgres@127.0.0.1:PORT/portal_test
    ...
    server.stop()

The server binaries (initdb, pg_ctl, psql) come from /usr/lib/postgresql/<newest>/bin
(Debian's layout) or from PATH; ``PORTAL_TEST_PG_BIN`` overrides both.

PostgreSQL refuses to run as root. When the tests run as root (CI does), the
cluster lives in a fresh directory under /tmp owned by the ``postgres`` user and
initdb/pg_ctl run through ``runuser -u postgres --`` (or ``su postgres -c``);
``base_dir`` (often a pytest tmp dir under a root-only 0700 directory) then only
gets a file ``postgres-cluster-dir`` naming where the cluster is. Durability is switched off
(fsync, synchronous_commit, full_page_writes) since the data is disposable.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port

__all__ = ["PostgresServer", "PostgresError", "find_pg_bin_dir", "start_postgres"]

HOST = "127.0.0.1"
SUPERUSER = "postgres"
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")


class PostgresError(RuntimeError):
    pass


def _version_key(path: str) -> tuple[int, ...]:
    name = Path(path).parent.parent.name  # /usr/lib/postgresql/<ver>/bin/initdb
    return tuple(int(p) for p in re.findall(r"\d+", name)) or (0,)


def find_pg_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and psql (newest version wins)."""
    override = os.environ.get("PORTAL_TEST_PG_BIN")
    if override:
        bin_dir = Path(override)
        if (bin_dir / "initdb").exists():
            return bin_dir
        raise PostgresError(f"PORTAL_TEST_PG_BIN={override} has no initdb")
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates = [c for c in candidates if Path(c).with_name("pg_ctl").exists()]
    if candidates:
        return Path(max(candidates, key=_version_key)).parent
    for name in ("pg_ctl", "initdb"):
        found = shutil.which(name)
        if found:
            bin_dir = Path(os.path.realpath(found)).parent
            if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
                return bin_dir
    raise PostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: "
        "install the 'postgresql' package (make test does it)"
    )


def _quote_ident(name: str) -> str:
    if not _IDENT_RE.match(name):
        raise ValueError(f"unsafe database name: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    env.pop("LANG", None)
    env.pop("LANGUAGE", None)
    return env


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int
    host: str = HOST
    user: str = SUPERUSER
    run_as: str | None = None  # OS user running the server ("postgres" when we are root)
    cleanup_dir: Path | None = None  # removed on stop()
    _running: bool = field(default=False, repr=False)

    # --- connection strings -------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir

    # --- SQL through psql ---------------------------------------------------
    def psql(self, sql: str, dbname: str = "postgres", timeout: float = 60) -> str:
        """Run ``sql`` with psql (ON_ERROR_STOP) and return its stdout (unaligned, tuples only)."""
        cmd = [
            str(self.bin_dir / "psql"),
            "-X", "-q", "-A", "-t",
            "-v", "ON_ERROR_STOP=1",
            "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", dbname,
            "-c", sql,
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=_clean_env(), timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise PostgresError(f"psql failed ({proc.returncode}): {sql}\n{proc.stderr.strip()}")
        return proc.stdout

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE ``name`` (optionally from ``template``); returns its DSN.

        Creating from a template fails while anything is connected to the template,
        so this retries for a few seconds (a just-closed pool may linger briefly).
        """
        sql = f"CREATE DATABASE {_quote_ident(name)}"
        if template:
            sql += f" TEMPLATE {_quote_ident(template)}"
        deadline = time.monotonic() + 10
        while True:
            try:
                self.psql(sql)
                return self.dsn(name)
            except PostgresError as exc:
                if template and "being accessed by other users" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ``name``, disconnecting its clients."""
        self.psql(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    # --- lifecycle ------------------------------------------------------------
    def _cmd(self, args: list[str]) -> list[str]:
        return _as_user(self.run_as, args)

    def stop(self) -> None:
        """pg_ctl stop -m fast; then remove the cluster directory if we created it."""
        if self._running:
            self._running = False
            subprocess.run(
                self._cmd([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
                capture_output=True, text=True, env=_clean_env(), cwd=str(self.data_dir),
                stdin=subprocess.DEVNULL, timeout=60,
            )
        if self.cleanup_dir is not None:
            shutil.rmtree(self.cleanup_dir, ignore_errors=True)
            self.cleanup_dir = None

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _as_user(user: str | None, args: list[str]) -> list[str]:
    if user is None:
        return args
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *args]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(args)]


def _run(args: list[str], *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, env=_clean_env(), cwd=str(cwd),
        stdin=subprocess.DEVNULL, timeout=timeout,
    )


def start_postgres(base_dir: Path | None = None, *, port: int | None = None) -> PostgresServer:
    """initdb a fresh cluster, start it on 127.0.0.1 at a free port, return the server.

    Runs as the ``postgres`` OS user when we are root. The cluster is removed on
    ``stop()`` (also registered with atexit, so a crashed session leaves no server).
    """
    bin_dir = find_pg_bin_dir()
    run_as: str | None = None
    cleanup: Path | None = None

    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(SUPERUSER)
        except KeyError as exc:  # pragma: no cover - Debian's package creates it
            raise PostgresError("running as root but there is no 'postgres' OS user") from exc
        run_as = SUPERUSER
        # A directory the postgres user can reach: pytest's tmp dirs sit under a 0700 root dir.
        root = Path(tempfile.mkdtemp(prefix="portal-pg-", dir="/tmp"))
        os.chmod(root, 0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
        cleanup = root
        if base_dir is not None:
            base_dir.mkdir(parents=True, exist_ok=True)
            (base_dir / "postgres-cluster-dir").write_text(str(root) + "\n")
    elif base_dir is not None:
        base_dir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=str(base_dir)))
    else:
        root = Path(tempfile.mkdtemp(prefix="portal-pg-", dir="/tmp"))
        cleanup = root

    data_dir = root / "data"
    initdb = [
        str(bin_dir / "initdb"), "-D", str(data_dir),
        "--auth=trust", "-U", SUPERUSER, "--encoding=UTF8", "--no-sync",
    ]
    proc = _run(_as_user(run_as, [*initdb, "--locale=C.UTF-8"]), cwd=root)
    if proc.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        proc = _run(_as_user(run_as, [*initdb, "--locale=C"]), cwd=root)
    if proc.returncode != 0:
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise PostgresError(f"initdb failed:\n{proc.stdout}\n{proc.stderr}")

    attempts = 1 if port is not None else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port(HOST)
        options = (
            f"-c listen_addresses={HOST} -p {chosen} -k {data_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = data_dir / "log"
        proc = _run(
            _as_user(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log),
                              "-o", options, "-w", "-t", "60", "start"]),
            cwd=data_dir,
        )
        if proc.returncode == 0:
            server = PostgresServer(
                bin_dir=bin_dir, data_dir=data_dir, port=chosen, run_as=run_as,
                cleanup_dir=cleanup, _running=True,
            )
            atexit.register(server.stop)
            return server
        try:
            last_error = log.read_text(errors="replace")[-3000:]
        except OSError:
            last_error = proc.stderr
        if "already in use" not in last_error and "could not bind" not in last_error:
            break
    if cleanup:
        shutil.rmtree(cleanup, ignore_errors=True)
    raise PostgresError(f"pg_ctl start failed:\n{proc.stdout}\n{proc.stderr}\n{last_error}")
