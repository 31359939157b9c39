"""The drawn signature PNG holds the drawing and nothing else, and the drawing is lines.

The browser signs the SHA-256 of the PNG it uploads and the server stores and embeds these bytes
(see ``validate_signature_png``), so anything but the pixels is refused rather than re-encoded.
"""

from __future__ import annotations

import io
import math
import re
import struct
import time
import tracemalloc
import zlib

import pytest
from PIL import Image, ImageCms, ImageDraw

from portal.documents.signing import SignatureImageError, sha256_hex, validate_signature_png
from tests.factories import signature_png
from tests.unit.test_signing import png_bytes, scribble_png

MB = 1024 * 1024
INK = (20, 33, 61, 255)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def chunks(png: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        out.append(png[pos:pos + 12 + length])
        pos += 12 + length
    return out


def insert(png: bytes, extra: bytes, before: bytes) -> bytes:
    """``png`` with the chunk ``extra`` inserted before the first chunk of type ``before``."""
    parts = chunks(png)
    at = next(i for i, c in enumerate(parts) if c[4:8] == before)
    return png[:8] + b"".join(parts[:at]) + extra + b"".join(parts[at:])


def inflating_to(size: int) -> bytes:
    compressor = zlib.compressobj(9)
    block = bytes(MB)
    return b"".join(compressor.compress(block) for _ in range(size // MB)) + compressor.flush()


TEXT_150_MB = inflating_to(150 * MB)  # ~150 KB


def validate_measured(data: bytes):
    """Run ``validate_signature_png``; (error message or hash, peak memory, seconds)."""
    validate_signature_png(signature_png())  # imports Pillow's PNG plugin before measuring
    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome = validate_signature_png(data)
    except SignatureImageError as exc:
        outcome = str(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak, time.monotonic() - started


EXTRA_CHUNKS = {
    "iTXt, compressed, 150 MB, before the pixels": (
        chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + TEXT_150_MB), b"IDAT"),
    "iTXt, unknown compression, 150 MB": (chunk(b"iTXt", b"Comment\x00\x01\x01\x00\x00" + TEXT_150_MB), b"IDAT"),
    "zTXt, 150 MB, after the pixels": (chunk(b"zTXt", b"Comment\x00\x00" + TEXT_150_MB), b"IEND"),
    "tEXt": (chunk(b"tEXt", b"Author\x00" + b"x" * 1000), b"IDAT"),
    "private chunk": (chunk(b"boMb", TEXT_150_MB), b"IEND"),
    "colour profile": (chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(b"\x00" * 3000)), b"IDAT"),
    "sRGB": (chunk(b"sRGB", b"\x00"), b"IDAT"),
}


@pytest.mark.parametrize("name", list(EXTRA_CHUNKS))
def test_anything_but_the_pixels_refused(name):
    extra, before = EXTRA_CHUNKS[name]
    png = signature_png()
    assert validate_signature_png(png) == sha256_hex(png)
    data = insert(png, extra, before)
    assert len(data) < 200 * 1024
    outcome, peak, seconds = validate_measured(data)
    assert outcome.startswith("Изображение подписи содержит посторонние данные")
    assert peak < 4 * MB and seconds < 2


def test_data_after_the_end_refused():
    outcome, peak, _seconds = validate_measured(signature_png() + zlib.compress(bytes(50 * MB)))
    assert outcome.startswith("Изображение подписи содержит посторонние данные") and peak < 4 * MB


def _ihdr(width: int, height: int, depth: int = 8, colour: int = 6) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))


def test_pixel_data_bomb_refused():
    """600×200 px announced, the compressed pixel data inflates to 150 MB: stops at the announced size."""
    data = b"\x89PNG\r\n\x1a\n" + _ihdr(600, 200) + chunk(b"IDAT", TEXT_150_MB) + chunk(b"IEND", b"")
    outcome, peak, seconds = validate_measured(data)
    assert outcome == "Файл повреждён или не является изображением PNG."
    assert peak < 4 * MB and seconds < 2


def test_pixel_data_followed_by_more_data_refused():
    image = Image.open(io.BytesIO(signature_png()))
    rows = b"".join(b"\x00" + image.tobytes()[y * 2400:(y + 1) * 2400] for y in range(200))
    clean = b"\x89PNG\r\n\x1a\n" + _ihdr(600, 200) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    assert validate_signature_png(clean) == sha256_hex(clean)
    for idat in (zlib.compress(rows) + zlib.compress(bytes(MB)), zlib.compress(rows + bytes(MB))):
        data = b"\x89PNG\r\n\x1a\n" + _ihdr(600, 200) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
        with pytest.raises(SignatureImageError, match="PNG"):
            validate_signature_png(data)


def test_huge_dimensions_refused_before_decoding():
    data = b"\x89PNG\r\n\x1a\n" + _ihdr(100_000, 100_000) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    outcome, peak, _seconds = validate_measured(data)
    assert "100000×100000 пикселей" in outcome and peak < 1 * MB


def shape_png(draw) -> bytes:
    image = Image.new("RGBA", (1200, 400), (0, 0, 0, 0))
    draw(ImageDraw.Draw(image))
    return png_bytes(image)


FILLED = {
    "black rectangle": lambda d: d.rectangle((200, 100, 700, 300), fill=(0, 0, 0, 255)),
    "solid canvas": lambda d: d.rectangle((0, 0, 1199, 399), fill=INK),
    "disc": lambda d: d.ellipse((500, 100, 700, 300), fill=INK),
    "hatched block": lambda d: [d.line([(300, 60 + k * 5), (900, 60 + k * 5)], fill=INK, width=5) for k in range(60)],
    "scribbled-over blob": lambda d: d.line(
        [(300 + i * 1.2, 200 + 150 * math.sin(i / 1.5)) for i in range(500)], fill=INK, width=5, joint="curve"),
}


@pytest.mark.parametrize("name", list(FILLED))
def test_filled_shapes_refused(name):
    with pytest.raises(SignatureImageError, match="закрашенной фигурой"):
        validate_signature_png(shape_png(FILLED[name]))


def test_drawings_accepted():
    browser_like = shape_png(lambda d: d.line(
        [(100 + i * 4, 200 + 120 * math.sin(i / 3.0)) for i in range(250)], fill=INK, width=5, joint="curve"))
    small_and_dense = shape_png(lambda d: d.line(
        [(500 + i * 3, 200 + 40 * math.sin(i / 2.0)) for i in range(40)], fill=INK, width=5, joint="curve"))
    outline = shape_png(lambda d: d.rectangle((200, 100, 700, 300), outline=INK, width=6))
    for data in (signature_png(), scribble_png(), scribble_png(2000, 1000), browser_like, small_and_dense, outline):
        assert validate_signature_png(data) == sha256_hex(data)


def test_same_pixels_with_a_profile_refused_without_accepted():
    image = Image.open(io.BytesIO(signature_png())).convert("RGBA")
    with_profile = io.BytesIO()
    image.save(with_profile, "PNG", icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    with pytest.raises(SignatureImageError, match="посторонние данные"):
        validate_signature_png(with_profile.getvalue())
    assert validate_signature_png(png_bytes(image))


def test_the_signature_field_checks_at_least_as_strictly_as_the_server():
    """static/signature-pad.js repeats the checks on the PNG it exports, with a margin: what the field
    accepts, the server accepts too (the browser tests check it on drawn signatures)."""
    from pathlib import Path

    from portal.documents import signing

    script = (Path(signing.__file__).parents[1] / "static" / "signature-pad.js").read_text()

    def js(name: str) -> float:
        return float(re.search(rf"\bvar {name} = ([0-9.]+);", script).group(1))

    assert js("INK_LUMA") == signing._INK_LUMA
    assert js("ANALYSIS_MAX_SIDE") == signing._ANALYSIS_MAX_SIDE
    assert js("MIN_INK") >= signing._MIN_INK_PIXELS
    assert js("MIN_EXTENT") > signing._MIN_EXTENT
    assert js("LINE_RATIO") > signing._LINE_RATIO
    assert js("LINE_HALF_WIDTH") > signing._LINE_HALF_WIDTH
    assert js("MAX_INK_SHARE") < signing._MAX_INK_SHARE
    assert js("LOGICAL_W") * js("EXPORT_SCALE") <= signing.SIGNATURE_PNG_MAX_WIDTH
    assert js("LOGICAL_H") * js("EXPORT_SCALE") <= signing.SIGNATURE_PNG_MAX_HEIGHT
    assert re.search(r'PIXEL_CHUNKS = \["IHDR", "PLTE", "IDAT", "IEND"\]', script)
    assert [c.decode() for c in signing._PIXEL_CHUNKS] == ["IHDR", "PLTE", "IDAT", "IEND"]
