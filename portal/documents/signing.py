"""Canonical documents, hashes and Ed25519 simple e-signatures (SPEC §5).

Pure functions, no database and no web. The browser signs, the server only verifies:

    document  = canonical_document(template, data, signer)
    doc_hash  = document_hash(document)                 # sha256 hex of canonical_json(document)
    img_hash  = validate_signature_png(png_bytes)       # sha256 hex of the drawn signature PNG
    message   = signed_message(doc_hash, img_hash)      # b"coopdoc:v1:<doc_hash>:<img_hash>"
    verify_signature(public_key_raw, message, signature)  # True / False

Keys travel as base64 of the raw 32-byte Ed25519 public key (WebCrypto ``exportKey("raw")``).
The private key is kept by the member as its 32-byte seed; WebCrypto imports it as PKCS#8
``PKCS8_ED25519_PREFIX + seed`` (see ``seed_to_pkcs8``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import re
import struct
import zlib
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

if TYPE_CHECKING:  # pragma: no cover
    from portal.documents.templates import TemplateInfo

#: The signed-message format version (SPEC §5). Never change it for existing documents.
MESSAGE_PREFIX = "coopdoc:v1:"

#: WebCrypto cannot import a raw Ed25519 private key; it imports the 32-byte seed as
#: PKCS#8 DER: this fixed 16-byte prefix followed by the seed (SPEC §5).
PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
PKCS8_ED25519_PREFIX_HEX = PKCS8_ED25519_PREFIX.hex()

#: SubjectPublicKeyInfo DER prefix of an Ed25519 public key (``exportKey("spki")``).
SPKI_ED25519_PREFIX = bytes.fromhex("302a300506032b6570032100")

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64

#: Limits of the drawn signature image.
SIGNATURE_PNG_MAX_BYTES = 200 * 1024
SIGNATURE_PNG_MAX_WIDTH = 2000
SIGNATURE_PNG_MAX_HEIGHT = 1000

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: Files attached to a signed PDF (SPEC §4), shared by the renderer and the verifier.
DOCUMENT_FILE = "document.json"
SIGNATURES_FILE = "signatures.json"
SIGNATURES_FORMAT = "coopdoc-signatures/v1"


def signature_file_name(n: int) -> str:
    """Attachment name of the n-th (1-based) drawn signature image."""
    return f"signature-{n}.png"

_HEX64 = re.compile(r"[0-9a-f]{64}")

CANONICAL_DOCUMENT_KEYS = frozenset(
    {"template_id", "template_version", "template_sha256", "data", "signer"}
)


class SignatureImageError(ValueError):
    """The drawn signature image is refused; ``str(error)`` is a Russian message for the user."""


class KeyFormatError(ValueError):
    """A key or a signature is not in the expected encoding (Russian message)."""


# --------------------------------------------------------------------------- canonical JSON


def canonical_json(obj: Any) -> bytes:
    """JSON with sorted keys, UTF-8 (Cyrillic as is), compact separators, no NaN/Infinity.

    Only JSON-native values are accepted (dict with str keys, list, str, int, float, bool,
    None); anything else (dates, Decimals, bytes) raises ``TypeError`` — convert it first
    (ISO strings for dates, integer kopecks for money).
    """
    return json.dumps(
        obj,
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    ).encode("utf-8")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def parse_canonical_json(data: bytes) -> Any:
    """Parse ``data`` and require that it is exactly ``canonical_json`` of its value.

    Raises ``ValueError`` if it is not UTF-8 JSON, has duplicate keys, NaN, or is not in the
    canonical form (key order, spacing, escapes).
    """
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    value = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    if canonical_json(value) != data:
        raise ValueError("not in canonical form")
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- documents


def canonical_document(template: "TemplateInfo", data: dict, signer: dict) -> dict:
    """The canonical document of SPEC §5.

    ``data`` must be everything the document body is rendered from except the signer
    (i.e. the template context without ``signer``, see ``portal.documents.templates``),
    so that the hash covers every value printed in the body. ``signer`` is the signer's
    identity: ``full_name``, ``email``, ``role`` (and, recommended, ``public_key`` — base64 of
    the raw public key, which binds the document to the key).
    """
    document = {
        "template_id": template.id,
        "template_version": template.version,
        "template_sha256": template.sha256,
        "data": data,
        "signer": signer,
    }
    canonical_json(document)  # fail early on non-JSON values
    return document


def document_hash(document: dict) -> str:
    """SHA-256 hex of ``canonical_json(document)``."""
    return sha256_hex(canonical_json(document))


def signed_message(document_hash_hex: str, image_sha256_hex: str) -> bytes:
    """``"coopdoc:v1:" + document_hash_hex + ":" + image_sha256_hex`` as UTF-8 bytes."""
    for value in (document_hash_hex, image_sha256_hex):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise ValueError("a SHA-256 must be 64 lowercase hex digits")
    return f"{MESSAGE_PREFIX}{document_hash_hex}:{image_sha256_hex}".encode("ascii")


# --------------------------------------------------------------------------- keys


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (what ``btoa`` produces in the browser)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64, padding optional; ``KeyFormatError`` if invalid."""
    if not isinstance(text, str):
        raise KeyFormatError("Ожидалась строка в кодировке base64.")
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/").rstrip("=")
    if not re.fullmatch(r"[A-Za-z0-9+/]*", cleaned) or len(cleaned) % 4 == 1:
        raise KeyFormatError("Строка не в кодировке base64.")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - guarded above
        raise KeyFormatError("Строка не в кодировке base64.") from exc


def public_key_from_b64(text: str) -> bytes:
    """Raw 32-byte public key from base64 of the raw key or of its SPKI DER form."""
    raw = b64decode(text)
    if len(raw) == len(SPKI_ED25519_PREFIX) + PUBLIC_KEY_SIZE and raw.startswith(SPKI_ED25519_PREFIX):
        raw = raw[len(SPKI_ED25519_PREFIX):]
    if len(raw) != PUBLIC_KEY_SIZE:
        raise KeyFormatError("Открытый ключ должен состоять из 32 байт (Ed25519).")
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:  # pragma: no cover - any 32 bytes load
        raise KeyFormatError("Открытый ключ не является ключом Ed25519.") from exc
    return raw


def signature_from_b64(text: str) -> bytes:
    raw = b64decode(text)
    if len(raw) != SIGNATURE_SIZE:
        raise KeyFormatError("Подпись Ed25519 должна состоять из 64 байт.")
    return raw


def verify_signature(public_key_raw: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification; False on any malformed input instead of raising."""
    if (
        not isinstance(public_key_raw, (bytes, bytearray))
        or len(public_key_raw) != PUBLIC_KEY_SIZE
        or not isinstance(signature, (bytes, bytearray))
        or len(signature) != SIGNATURE_SIZE
    ):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public_key_raw)).verify(bytes(signature), bytes(message))
    except (InvalidSignature, ValueError):
        return False
    return True


def key_fingerprint(public_key_raw: bytes) -> str:
    """Readable fingerprint: first 16 bytes of SHA-256 of the raw key, upper hex, groups of 4.

    Example: ``"3F2A 91C0 5B7E 0D44 A1B2 C3D4 E5F6 0718"``.
    """
    if len(public_key_raw) != PUBLIC_KEY_SIZE:
        raise KeyFormatError("Открытый ключ должен состоять из 32 байт (Ed25519).")
    digest = hashlib.sha256(public_key_raw).hexdigest()[:32].upper()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def seed_to_pkcs8(seed: bytes) -> bytes:
    """PKCS#8 DER that WebCrypto ``importKey("pkcs8", …, "Ed25519")`` accepts."""
    if len(seed) != SEED_SIZE:
        raise KeyFormatError("Ключ пайщика должен состоять из 32 байт.")
    return PKCS8_ED25519_PREFIX + seed


def seed_from_pkcs8(der: bytes) -> bytes:
    if len(der) != len(PKCS8_ED25519_PREFIX) + SEED_SIZE or not der.startswith(PKCS8_ED25519_PREFIX):
        raise KeyFormatError("Это не ключ Ed25519 в формате PKCS#8.")
    return der[len(PKCS8_ED25519_PREFIX):]


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != SEED_SIZE:
        raise KeyFormatError("Ключ пайщика должен состоять из 32 байт.")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_raw(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def sign(seed: bytes, message: bytes) -> bytes:
    """Sign with a 32-byte seed (tests, and the operator's own seal on the server side)."""
    return private_key_from_seed(seed).sign(message)


# --------------------------------------------------------------------------- signature image

#: A pixel is "ink" if, composited on white, its luminance is below this (0..255).
_INK_LUMA = 200
#: Fewer ink pixels than this (at analysis scale) — the canvas is considered blank.
_MIN_INK_PIXELS = 12
#: Ink whose extent is smaller than this (px, both directions, at analysis scale) is a dot.
_MIN_EXTENT = 8
#: Drawn strokes are analysed on an image no larger than this (speed).
_ANALYSIS_MAX_SIDE = 500
#: Straight line: minor/major standard deviation ratio of the ink below this …
_LINE_RATIO = 0.06
#: … or the ink lies within this many px (analysis scale) of its principal axis.
_LINE_HALF_WIDTH = 3.0
#: A drawing is lines: ink covering more than this share of its bounding box (full resolution)
#: is a filled shape or a blot. Handwritten signatures cover 5–15 %, a filled rectangle 100 %.
_MAX_INK_SHARE = 0.5

#: The PNG chunks a drawn signature consists of: the pixels and nothing else.
_PIXEL_CHUNKS = (b"IHDR", b"PLTE", b"IDAT", b"IEND")
#: PNG colour type → (channels, allowed bit depths).
_COLOUR_TYPES = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (1, (1, 2, 4, 8)), 4: (2, (8, 16)), 6: (4, (8, 16))}

_NOT_PNG = "Файл повреждён или не является изображением PNG."
_NOT_ONLY_PIXELS = (
    "Изображение подписи содержит посторонние данные, а не только рисунок. Обновите страницу и "
    "распишитесь снова."
)


def validate_signature_png(data: bytes) -> str:
    """Check a drawn signature PNG and return its SHA-256 hex, or raise ``SignatureImageError``.

    Refused: not a PNG (magic bytes, chunk checksums and a real decode), larger than 200 KB,
    larger than 2000×1000 px, anything in the file besides the pixels, blank (nothing drawn:
    transparent/white), a single straight line (all the ink lies in a thin band around one
    axis) and a filled shape (the ink covers most of its bounding box).

    Why the uploaded bytes are checked rather than re-encoded: the browser signs
    ``coopdoc:v1:<document hash>:<SHA-256 of the PNG it uploads>``, the server checks that
    signature and stores and embeds these very bytes, and ``verify_pdf`` (``portal verify``,
    /verify) checks that the PNG attached to the PDF has the signed SHA-256. An image re-encoded
    here would have another hash: the member's signature would no longer cover the image in the
    PDF, and every issued PDF would need a second image hash. So the re-encoding happens in the
    browser, before hashing: ``signature-pad.js`` keeps only the chunks that carry the pixels
    (IHDR, IDAT, IEND). Here a PNG must consist of exactly those — no text, metadata, colour
    profile or private chunks, nothing after IEND, and compressed pixel data that inflates to
    exactly the size its header announces — so what is stored, hashed and embedded into the
    PDFs is the drawing and nothing else. The sizes are checked before any pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError  # Pillow is a WeasyPrint dependency

    if not isinstance(data, (bytes, bytearray)) or not data:
        raise SignatureImageError("Изображение подписи не получено.")
    data = bytes(data)
    if len(data) > SIGNATURE_PNG_MAX_BYTES:
        raise SignatureImageError(
            f"Изображение подписи слишком большое: {len(data) // 1024} КБ, допускается не более "
            f"{SIGNATURE_PNG_MAX_BYTES // 1024} КБ."
        )
    if not data.startswith(PNG_MAGIC):
        raise SignatureImageError("Изображение подписи должно быть в формате PNG.")
    _check_png_structure(data)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()  # decode the pixels: their size is known to be within the limits
            rgba = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise SignatureImageError(_NOT_PNG) from exc

    mask = _ink_mask(rgba)
    points = _ink_points(mask)
    if len(points) < _MIN_INK_PIXELS:
        raise SignatureImageError("Подпись не нарисована: поле для подписи пустое — распишитесь в нём.")
    if _is_straight_line(points):
        raise SignatureImageError(
            "Подпись не может быть одной прямой линией — распишитесь так, как на бумаге."
        )
    if _ink_share(mask) > _MAX_INK_SHARE:
        raise SignatureImageError(
            "Подпись не может быть закрашенной фигурой — распишитесь так, как на бумаге."
        )
    return sha256_hex(data)


def _check_png_structure(data: bytes) -> None:
    """Only IHDR, (PLTE,) IDAT…, IEND with valid CRCs; the size and the pixel data checked.

    The pixel data is inflated here with a bound computed from the header (at most 16 MB for
    2000×1000 px at 16 bits × 4 channels), so a decompression bomb stops at that bound.
    """
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(PNG_MAGIC)
    while pos < len(data):
        if pos + 12 > len(data):
            raise SignatureImageError(_NOT_PNG)
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise SignatureImageError(_NOT_PNG)
        body = data[pos + 8:end - 4]
        if zlib.crc32(kind + body) != int.from_bytes(data[end - 4:end], "big"):
            raise SignatureImageError(_NOT_PNG)
        if kind not in _PIXEL_CHUNKS:
            raise SignatureImageError(_NOT_ONLY_PIXELS)
        chunks.append((kind, body))
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise SignatureImageError(_NOT_ONLY_PIXELS)  # bytes after IEND
    kinds = [kind for kind, _body in chunks]
    if not kinds or kinds[0] != b"IHDR" or kinds[-1] != b"IEND" or len(chunks[0][1]) != 13:
        raise SignatureImageError(_NOT_PNG)
    if chunks[-1][1] or kinds.count(b"IHDR") != 1 or kinds.count(b"IEND") != 1 or kinds.count(b"PLTE") > 1:
        raise SignatureImageError(_NOT_PNG)
    idat = [i for i, kind in enumerate(kinds) if kind == b"IDAT"]
    if not idat or idat != list(range(idat[0], idat[-1] + 1)):
        raise SignatureImageError(_NOT_PNG)  # the pixel data must be one run of IDAT chunks
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if width > SIGNATURE_PNG_MAX_WIDTH or height > SIGNATURE_PNG_MAX_HEIGHT:
        raise SignatureImageError(
            f"Изображение подписи слишком большое: {width}×{height} пикселей, допускается "
            f"не более {SIGNATURE_PNG_MAX_WIDTH}×{SIGNATURE_PNG_MAX_HEIGHT}."
        )
    if width < 1 or height < 1:
        raise SignatureImageError("Изображение подписи пустое.")
    channels, depths = _COLOUR_TYPES.get(colour, (0, ()))
    if depth not in depths or compression or filtering or interlace or ((b"PLTE" in kinds) != (colour == 3)):
        raise SignatureImageError(_NOT_PNG)  # browsers write neither interlaced nor odd PNGs
    # The rows of pixels (a filter byte each) exactly; inflated step by step, only measured.
    expected = height * (1 + (width * channels * depth + 7) // 8)
    inflater = zlib.decompressobj()
    pending = b"".join(body for kind, body in chunks if kind == b"IDAT")
    size = 0
    try:
        while not inflater.eof and size <= expected:
            step = inflater.decompress(pending, 64 * 1024)
            pending = inflater.unconsumed_tail
            if not step:
                break
            size += len(step)
    except zlib.error as exc:
        raise SignatureImageError(_NOT_PNG) from exc
    if size != expected or not inflater.eof or inflater.unused_data or pending:
        raise SignatureImageError(_NOT_PNG)  # too little, too much, or more data after the pixels


def _ink_mask(rgba):
    """255 where there is ink (composited on white, darker than ``_INK_LUMA``), else 0."""
    from PIL import Image

    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    luma = Image.alpha_composite(white, rgba).convert("L")
    return luma.point(lambda v: 255 if v < _INK_LUMA else 0)


def _ink_share(mask) -> float:
    """Share of the ink's bounding box that is ink, at full resolution."""
    bbox = mask.getbbox()
    if bbox is None:
        return 0.0
    area = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1])
    return mask.crop(bbox).histogram()[255] / area


def _ink_points(mask) -> list[tuple[int, int]]:
    """Coordinates of ink pixels on a reduced copy (any ink inside a reduced cell counts)."""
    from PIL import Image

    bbox = mask.getbbox()
    if bbox is None:
        return []
    mask = mask.crop(bbox)
    width, height = mask.size
    factor = max(1, math.ceil(max(width, height) / _ANALYSIS_MAX_SIDE))
    if factor > 1:
        width, height = max(1, width // factor), max(1, height // factor)
        mask = mask.resize((width, height), Image.Resampling.BOX)
    raw = mask.tobytes()
    return [(i % width, i // width) for i, value in enumerate(raw) if value]


def _is_straight_line(points: list[tuple[int, int]]) -> bool:
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points) / n
    syy = sum((p[1] - my) ** 2 for p in points) / n
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points) / n
    # Eigenvalues of the 2×2 covariance matrix.
    half_trace = (sxx + syy) / 2
    root = math.sqrt(max(0.0, ((sxx - syy) / 2) ** 2 + sxy**2))
    major, minor = half_trace + root, max(0.0, half_trace - root)
    if math.sqrt(major) * math.sqrt(12) < _MIN_EXTENT:  # a dot or a tiny blot, not a signature
        return True
    # Unit vector across the principal axis.
    if sxy == 0 and sxx >= syy:
        nx, ny = 0.0, 1.0
    elif sxy == 0:
        nx, ny = 1.0, 0.0
    else:
        ax, ay = major - syy, sxy  # eigenvector of the major eigenvalue
        norm = math.hypot(ax, ay)
        nx, ny = -ay / norm, ax / norm
    distances = sorted(abs((p[0] - mx) * nx + (p[1] - my) * ny) for p in points)
    band = distances[int(0.98 * (n - 1))]  # 98 % of the ink lies within ±band of the axis
    ratio = math.sqrt(minor) / math.sqrt(major) if major > 0 else 0.0
    return ratio < _LINE_RATIO or band <= _LINE_HALF_WIDTH
