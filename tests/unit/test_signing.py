"""Canonical JSON, document hashes, Ed25519 signatures and the drawn-signature PNG (SPEC §5)."""

from __future__ import annotations

import copy
import io
import math
import os
import random
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageDraw

from portal.documents import signing
from portal.documents.signing import (
    PKCS8_ED25519_PREFIX,
    KeyFormatError,
    SignatureImageError,
    b64encode,
    canonical_document,
    canonical_json,
    document_hash,
    key_fingerprint,
    parse_canonical_json,
    public_key_from_b64,
    signed_message,
    validate_signature_png,
    verify_signature,
)
from portal.documents.templates import get_template, sample_context


# --------------------------------------------------------------------------- PNG helpers


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def scribble_png(width: int = 600, height: int = 200, background=(0, 0, 0, 0)) -> bytes:
    """A hand-written-looking signature: a loopy stroke plus an underline flourish."""
    image = Image.new("RGBA", (width, height), background)
    draw = ImageDraw.Draw(image)
    points = [
        (40 + i * (width - 120) / 120, height / 2 + 0.3 * height * math.sin(i / 4) * math.cos(i / 9))
        for i in range(121)
    ]
    draw.line(points, fill=(10, 20, 90, 255), width=3, joint="curve")
    draw.arc((width * 0.55, height * 0.15, width * 0.8, height * 0.75), 20, 320, fill=(10, 20, 90, 255), width=3)
    return png_bytes(image)


def blank_png(width: int = 600, height: int = 200, color=(0, 0, 0, 0)) -> bytes:
    return png_bytes(Image.new("RGBA", (width, height), color))


def line_png(start=(50, 100), end=(550, 100), width: int = 4, size=(600, 200)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(image).line([start, end], fill=(0, 0, 0, 255), width=width)
    return png_bytes(image)


def noisy_png(width: int = 320, height: int = 320) -> bytes:
    rng = random.Random(7)
    image = Image.frombytes("RGBA", (width, height), bytes(rng.getrandbits(8) for _ in range(width * height * 4)))
    return png_bytes(image)


# --------------------------------------------------------------------------- canonical JSON


def test_canonical_json_sorted_compact_utf8():
    value = {"b": 1, "a": {"я": "Привет", "z": [1, 2, {"y": None, "x": True}]}}
    assert canonical_json(value) == (
        '{"a":{"z":[1,2,{"x":true,"y":null}],"я":"Привет"},"b":1}'.encode("utf-8")
    )
    assert "Привет".encode("utf-8") in canonical_json(value)  # not \\u-escaped


def test_canonical_json_independent_of_insertion_order():
    one = {"inn": "7707083893", "name": "ПК «ВОСХОД»", "fees": {"share": 300000, "entrance": 100000}}
    two = {"fees": {"entrance": 100000, "share": 300000}, "name": "ПК «ВОСХОД»", "inn": "7707083893"}
    assert canonical_json(one) == canonical_json(two)
    assert canonical_json(one) == canonical_json(copy.deepcopy(one))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"x": float("-inf")}])
def test_canonical_json_refuses_nan(bad):
    with pytest.raises(ValueError):
        canonical_json(bad)


def test_canonical_json_refuses_non_json_values():
    import datetime as dt

    with pytest.raises(TypeError):
        canonical_json({"date": dt.date(2026, 11, 25)})


def test_parse_canonical_json_round_trip_and_rejects_other_forms():
    value = {"b": [1, "два"], "a": "ё"}
    assert parse_canonical_json(canonical_json(value)) == value
    for variant in (
        b'{"b":[1,"\\u0434\\u0432\\u0430"],"a":"\\u0451"}',  # escaped and unsorted
        '{"a": "ё", "b": [1, "два"]}'.encode(),  # spaces
        '{"a":"ё","a":"ё","b":[1,"два"]}'.encode(),  # duplicate key
        b'{"a":NaN}',
        b"\xff\xfe",
    ):
        with pytest.raises(ValueError):
            parse_canonical_json(variant)


# --------------------------------------------------------------------------- documents and hashes


def make_document(applicant_type: str = "organization") -> dict:
    context = sample_context(applicant_type)
    signer = context.pop("signer")
    return canonical_document(get_template("join_application"), context, signer)


def test_canonical_document_shape():
    document = make_document()
    template = get_template("join_application")
    assert set(document) == {"template_id", "template_version", "template_sha256", "data", "signer"}
    assert document["template_id"] == "join_application"
    assert document["template_version"] == template.version
    assert document["template_sha256"] == template.sha256
    assert re.fullmatch(r"[0-9a-f]{64}", document_hash(document))
    assert document_hash(document) == signing.sha256_hex(canonical_json(document))


def _leaf_paths(value, prefix=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, prefix + (key,))
    else:
        yield prefix


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return str(value) + "."


def test_hash_changes_with_any_field():
    document = make_document()
    original = document_hash(document)
    paths = list(_leaf_paths(document))
    assert len(paths) > 30
    seen = {original}
    for path in paths:
        changed = copy.deepcopy(document)
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = _changed(target[path[-1]])
        new_hash = document_hash(changed)
        assert new_hash not in seen, path
        seen.add(new_hash)


def test_hash_stable_for_the_same_content():
    assert document_hash(make_document("individual")) == document_hash(make_document("individual"))
    assert document_hash(make_document("individual")) != document_hash(make_document("entrepreneur"))


def test_signed_message_format():
    h1, h2 = "a" * 64, "0123456789abcdef" * 4
    assert signed_message(h1, h2) == f"coopdoc:v1:{h1}:{h2}".encode()
    for bad in ("A" * 64, "a" * 63, "g" * 64, None):
        with pytest.raises(ValueError):
            signed_message(bad, h2)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- keys and signatures


@pytest.fixture(scope="module")
def keypair():
    seed = os.urandom(32)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return seed, private, public


def test_sign_and_verify(keypair):
    seed, private, public = keypair
    message = signed_message(document_hash(make_document()), validate_signature_png(scribble_png()))
    signature = private.sign(message)
    assert verify_signature(public, message, signature)
    assert signing.sign(seed, message) == signature  # Ed25519 is deterministic


def test_forged_signature_and_tampered_hash_rejected(keypair):
    _, private, public = keypair
    document = make_document()
    image_hash = validate_signature_png(scribble_png())
    message = signed_message(document_hash(document), image_hash)
    signature = private.sign(message)

    forged = bytearray(signature)
    forged[10] ^= 0x01
    assert not verify_signature(public, message, bytes(forged))

    document["data"]["cooperative"]["fee_share_org"] = 1
    tampered = signed_message(document_hash(document), image_hash)
    assert not verify_signature(public, tampered, signature)

    other_image = signed_message(document_hash(make_document()), "0" * 64)
    assert not verify_signature(public, other_image, signature)

    stranger = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert not verify_signature(stranger, message, signature)
    assert not verify_signature(public[:31], message, signature)
    assert not verify_signature(public, message, signature[:63])


def test_pkcs8_prefix_is_what_webcrypto_imports(keypair):
    seed, _, public = keypair
    assert PKCS8_ED25519_PREFIX.hex() == "302e020100300506032b657004220420"
    loaded = serialization.load_der_private_key(PKCS8_ED25519_PREFIX + seed, password=None)
    assert loaded.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ) == public
    assert signing.seed_from_pkcs8(signing.seed_to_pkcs8(seed)) == seed


def test_public_key_encodings(keypair):
    _, private, public = keypair
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key_from_b64(b64encode(public)) == public
    assert public_key_from_b64(b64encode(public).rstrip("=").replace("+", "-").replace("/", "_")) == public
    assert public_key_from_b64(b64encode(spki)) == public
    for bad in ("", "!!!!", b64encode(public[:31]), b64encode(public + b"x")):
        with pytest.raises(KeyFormatError):
            public_key_from_b64(bad)


def test_key_fingerprint_readable(keypair):
    _, _, public = keypair
    fingerprint = key_fingerprint(public)
    assert re.fullmatch(r"([0-9A-F]{4} ){7}[0-9A-F]{4}", fingerprint)
    assert fingerprint.replace(" ", "").lower() == signing.sha256_hex(public)[:32]


# --------------------------------------------------------------------------- signature PNG


def test_scribble_accepted():
    data = scribble_png()
    assert validate_signature_png(data) == signing.sha256_hex(data)
    # On a white background and at the maximum size too.
    validate_signature_png(scribble_png(background=(255, 255, 255, 255)))
    validate_signature_png(scribble_png(2000, 1000))


@pytest.mark.parametrize(
    "data",
    [blank_png(), blank_png(color=(255, 255, 255, 255)), blank_png(color=(0, 0, 0, 5))],
    ids=["transparent", "white", "almost-transparent"],
)
def test_blank_refused(data):
    with pytest.raises(SignatureImageError, match="пуст"):
        validate_signature_png(data)


@pytest.mark.parametrize(
    "data",
    [
        line_png(),
        line_png((30, 180), (570, 20), width=6),
        line_png((300, 10), (300, 190), width=3),
        line_png((30, 100), (1970, 110), width=12, size=(2000, 1000)),
    ],
    ids=["horizontal", "diagonal", "vertical", "thick-wide"],
)
def test_straight_line_refused(data):
    with pytest.raises(SignatureImageError, match="прямой"):
        validate_signature_png(data)


def test_not_a_png_refused():
    jpeg = io.BytesIO()
    Image.new("RGB", (100, 50), "white").save(jpeg, "JPEG")
    for data in (b"", b"hello", jpeg.getvalue(), b"GIF89a" + b"\0" * 100):
        with pytest.raises(SignatureImageError):
            validate_signature_png(data)
    corrupted = bytearray(scribble_png())
    corrupted[len(corrupted) // 2] ^= 0xFF  # breaks the IDAT CRC / zlib stream
    with pytest.raises(SignatureImageError, match="PNG"):
        validate_signature_png(bytes(corrupted))
    with pytest.raises(SignatureImageError, match="PNG"):
        validate_signature_png(scribble_png()[:200])  # truncated


def test_too_large_file_refused():
    data = noisy_png()
    assert len(data) > 200 * 1024
    with pytest.raises(SignatureImageError, match="КБ"):
        validate_signature_png(data)


@pytest.mark.parametrize("size", [(2001, 400), (800, 1001)])
def test_too_many_pixels_refused(size):
    data = scribble_png(*size)
    assert len(data) < 200 * 1024
    with pytest.raises(SignatureImageError, match="пикселей"):
        validate_signature_png(data)
