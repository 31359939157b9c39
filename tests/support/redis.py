"""A throwaway Redis server on loopback (Debian's redis-server), for the shared-store tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port


class RedisServer:
    def __init__(self, proc: subprocess.Popen, port: int, workdir: Path):
        self.proc = proc
        self.port = port
        self.workdir = workdir

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis() -> RedisServer:
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make test installs it with apt-get)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="portal-redis-"))
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir), "--daemonize", "no"],
                            stdout=(workdir / "redis.log").open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return RedisServer(proc, port, workdir)
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((workdir / "redis.log").read_text())
        time.sleep(0.1)
