"""An uploaded PDF is checked in a child process with memory and CPU limits: a file that is cheap to send but
expensive to parse is refused as too complex, and a genuine one verifies as before."""

from __future__ import annotations

import time

from portal.documents.sandbox import TOO_COMPLEX, verify_upload
from tests.unit.test_verify_limits import genuine, raw_pdf  # noqa: F401  (the fixture is used by name)


def huge_arrays_pdf(arrays: int = 5, elements: int = 99_000) -> bytes:
    """About 1 MB, no compression at all; parsing the catalog's arrays costs pyHanko ~100 MB and ~50 s."""
    junk = b" ".join(b"/A%d [%s]" % (n, b" ".join([b"0"] * elements)) for n in range(arrays))
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R " + junk + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ])


def test_a_file_expensive_to_parse_is_refused_within_the_limits():
    started = time.monotonic()
    result = verify_upload(huge_arrays_pdf(), cpu_seconds=2, wall_seconds=20)
    assert result.refused and not result.valid and result.reason == TOO_COMPLEX
    assert time.monotonic() - started < 20


def test_a_file_needing_too_much_memory_is_refused():
    """Out of memory in the child: refused (as too complex or as unreadable), the portal's process untouched."""
    result = verify_upload(huge_arrays_pdf(), extra_memory=32 * 1024 * 1024, cpu_seconds=60)
    assert result.refused and not result.valid


def test_a_genuine_pdf_verifies_in_the_child_process(genuine):  # noqa: F811
    result = verify_upload(genuine)
    assert result.valid, result.reason
    assert result.seal is not None and result.signers


def test_at_most_two_checks_run_at_once(monkeypatch):
    """A burst of hostile uploads waits for a slot; one that waits past the wall time is refused as busy."""
    import threading

    from portal.documents import sandbox

    slots = threading.BoundedSemaphore(sandbox.CONCURRENT)
    monkeypatch.setattr(sandbox, "_slots", slots)
    for _ in range(sandbox.CONCURRENT):
        slots.acquire()
    result = verify_upload(b"%PDF-1.7", wall_seconds=0.2)
    assert result.refused and result.reason == sandbox.BUSY
