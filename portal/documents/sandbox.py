"""Verification of an uploaded PDF in a child process with a memory and a CPU-time limit.

verify_pdf bounds what it decompresses, but parsing itself can be made expensive (a 1 MB file of huge
arrays costs pyHanko ~100 MB and ~50 s of CPU). An upload from anyone is therefore checked in a process
forked from a warm fork server, under RLIMIT_AS and RLIMIT_CPU, and killed past a wall-clock deadline; the
portal's own processes never pay for a hostile file.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from typing import Collection

from portal.documents.verify import VerifyResult

CPU_SECONDS = 10
EXTRA_MEMORY = 512 * 1024 * 1024
WALL_SECONDS = 30
TOO_COMPLEX = ("Файл слишком сложен для проверки: его разбор требует больше времени или памяти, чем бывает "
               "у документов портала. Проверьте исходный PDF, полученный с портала.")

_context = None
CONCURRENT = 2  # checks at once per portal process; the others wait their turn (within the wall time)
_slots = threading.BoundedSemaphore(CONCURRENT)
BUSY = "Сейчас проверяется слишком много файлов. Попробуйте через минуту."


def _fork_server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["portal.documents.verify"])
    return _context


def _virtual_size() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(conn, content: bytes, seal_certificates, cpu_seconds: int, extra_memory: int) -> None:
    import resource

    from portal.documents.verify import verify_pdf

    limit = _virtual_size() + extra_memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    try:
        conn.send(verify_pdf(content, seal_certificates=seal_certificates))
    except MemoryError:
        conn.send(None)
    finally:
        conn.close()


def verify_upload(content: bytes, *, seal_certificates: Collection[str] | None = None,
                  cpu_seconds: int = CPU_SECONDS, extra_memory: int = EXTRA_MEMORY,
                  wall_seconds: float = WALL_SECONDS) -> VerifyResult:
    """verify_pdf in a limited child process; a file that exhausts a limit is refused as too complex. At most
    CONCURRENT children per process: an upload that waits longer than the wall time for a slot is refused."""
    if not _slots.acquire(timeout=wall_seconds):
        return VerifyResult(valid=False, reason=BUSY, refused=True)
    try:
        return _verify_in_child(content, seal_certificates, cpu_seconds, extra_memory, wall_seconds)
    finally:
        _slots.release()


def _verify_in_child(content: bytes, seal_certificates, cpu_seconds: int, extra_memory: int,
                     wall_seconds: float) -> VerifyResult:
    ctx = _fork_server()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, content, list(seal_certificates) if seal_certificates else None,
                                            cpu_seconds, extra_memory), daemon=True)
    proc.start()
    child.close()
    result = None
    try:
        if parent.poll(wall_seconds):
            result = parent.recv()
    except (EOFError, OSError):  # the child died (killed by RLIMIT_CPU, out of memory)
        result = None
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if isinstance(result, VerifyResult):
        return result
    return VerifyResult(valid=False, reason=TOO_COMPLEX, refused=True)
