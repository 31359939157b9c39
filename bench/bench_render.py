"""Render the joining package: plain WeasyPrint PDFs vs the signed PDF/A-3b (signature page,
attachments, signature checks), N times each; prints per-document times and the ratio.

    .venv/bin/python -P bench/bench_render.py   # -P: bench/http.py must not shadow the standard http [-n 10] [--type organization|individual|entrepreneur]
Then the breakdown of the extra cost: signature sheet, PDF/A-3b, attachments, the operator's seal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image, ImageDraw  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from portal.documents import render  # noqa: E402
from portal.documents.render import SignatureRecord  # noqa: E402
from portal.documents.signing import (  # noqa: E402
    b64encode,
    canonical_document,
    document_hash,
    key_fingerprint,
    private_key_from_seed,
    public_key_raw,
    sign,
    signed_message,
    validate_signature_png,
)
from portal.documents.templates import get_template, sample_context  # noqa: E402

# The documents a member signs when joining (the ПЭП offer is accepted at registration, not signed).
PACKAGE = ("join_application", "pd_consent", "user_agreement")


def scribble() -> bytes:
    image = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    points = [(40 + i * 4, 100 + 60 * math.sin(i / 4) * math.cos(i / 9)) for i in range(121)]
    ImageDraw.Draw(image).line(points, fill=(10, 20, 90, 255), width=3)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def signed_inputs(template_id: str, context: dict, seed: bytes, png: bytes):
    public = public_key_raw(private_key_from_seed(seed))
    signer = {**context["signer"], "public_key": b64encode(public)}
    document = canonical_document(
        get_template(template_id), {k: v for k, v in context.items() if k != "signer"}, signer
    )
    doc_hash = document_hash(document)
    image_hash = validate_signature_png(png)
    record = SignatureRecord(
        full_name=signer["full_name"], role=signer["role"], email=signer["email"],
        key_fingerprint=key_fingerprint(public), public_key_b64=b64encode(public),
        signature_b64=b64encode(sign(seed, signed_message(doc_hash, image_hash))),
        image_sha256=image_hash, image_png=png, signed_at=dt.datetime.now(dt.timezone.utc),
        ip="127.0.0.1", user_agent="bench", document_hash=doc_hash,
    )
    return document, record


def timed(fn, n: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (less noisy on a busy machine), ms."""
    wall, cpu = [], []
    for _ in range(n):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


STAGES = ("plain body", "+ signature sheet", "+ PDF/A-3b", "+ attachments", "+ operator seal")


def breakdown(template_id: str, context: dict, seed: bytes, png: bytes, n: int) -> list[float]:
    """Median CPU ms of each stage a signed document adds to the plain render, cumulatively: the signature
    sheet (bigger HTML), the PDF/A-3b variant (with its finisher), the attachments, the seal (pyHanko)."""
    import tempfile

    from portal.documents.seal import ensure_seal_identity, seal_pdf

    document, record = signed_inputs(template_id, context, seed, png)
    captured: dict = {}
    real_write = render._write_pdf

    def capture(html_text: str, *args, **options):
        captured.update(html=html_text, options=options)
        return real_write(html_text, *args, **options)

    render._write_pdf = capture
    try:
        signed = render.render_signed_pdf(template_id, document, None, [record], "https://x/verify")
    finally:
        render._write_pdf = real_write
    html, options = captured["html"], captured["options"]
    no_attachments = {k: v for k, v in options.items() if k != "attachments"}
    identity = ensure_seal_identity(Path(tempfile.mkdtemp(prefix="bench-seal-")), "ПК «ВОСХОД»")
    steps = [
        lambda: render.render_pdf(template_id, context),
        lambda: real_write(html),
        lambda: real_write(html, **no_attachments),
        # WeasyPrint's attachments are single-use: the whole signed render (its checks are microseconds)
        lambda: render.render_signed_pdf(template_id, document, None, [record], "https://x/verify"),
        lambda: seal_pdf(signed, identity),
    ]
    cpu = [timed(step, n)[1] for step in steps]
    cpu[4] += cpu[3]  # the seal comes on top of the full render
    return cpu


def print_breakdown(context: dict, seed: bytes, png: bytes, n: int) -> None:
    """Where a signed document's extra cost goes, for the documents a member signs when joining."""
    rows = [breakdown(t, context, seed, png, n) for t in PACKAGE]
    totals = [sum(r[i] for r in rows) for i in range(len(STAGES))]
    print(f"where the signed package's extra CPU goes (median of {n}, cumulative, all {len(PACKAGE)} documents):")
    for i, stage in enumerate(STAGES):
        step = totals[i] - (totals[i - 1] if i else 0)
        print(f"  {stage:<20} {totals[i]:7.0f} ms  ({'+' if i else ' '}{step:5.0f} ms, ×{totals[i] / totals[0]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--type", default="organization", choices=["organization", "individual", "entrepreneur"])
    args = parser.parse_args()

    start = time.perf_counter()
    render.warm_up()
    print(f"warm-up: {(time.perf_counter() - start) * 1000:.0f} ms")
    context = sample_context(args.type)
    seed, png = os.urandom(32), scribble()
    print(f"median of {args.n} renders; 'signed' = + signature page, PDF/A-3b, attachments, checks")
    print(f"{'document':<18} {'pages':>5} {'plain ms':>9} {'signed ms':>10} {'ratio':>6} {'(cpu ms':>8} {'cpu ms)':>8}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for template_id in PACKAGE:
        document, record = signed_inputs(template_id, context, seed, png)
        plain = timed(lambda: render.render_pdf(template_id, context), args.n)
        signed_pdf: list[bytes] = []

        def signed_once() -> None:
            signed_pdf[:] = [render.render_signed_pdf(template_id, document, None, [record], "https://x/verify")]

        signed = timed(signed_once, args.n)
        pages = len(PdfReader(io.BytesIO(signed_pdf[0])).pages)
        (p, pc), (s, sc) = plain, signed
        for i, value in enumerate((p, s, pc, sc)):
            totals[i] += value
        print(f"{template_id:<18} {pages:>5} {p:>9.0f} {s:>10.0f} {s / p:>6.2f} {pc:>8.0f} {sc:>8.0f}")
    p, s, pc, sc = totals
    print(f"{'package':<18} {'':>5} {p:>9.0f} {s:>10.0f} {s / p:>6.2f} {pc:>8.0f} {sc:>8.0f}")
    print_breakdown(context, seed, png, args.n)


if __name__ == "__main__":
    main()
