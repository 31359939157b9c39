"""Documents and simple e-signatures: a pure engine (no database, no web).

    from portal.documents import (
        get_template, canonical_document, document_hash, signed_message, verify_signature,
        validate_signature_png, render_html, render_signed_pdf, SignatureRecord, verify_pdf,
        ensure_seal_identity, seal_pdf, check_seal,
    )

See ``templates`` for the registry and the template context contract, ``signing`` for the
canonical JSON, hashes and keys (SPEC §5), ``render`` for HTML/PDF output (SPEC §4) and
``verify`` for the offline check of a signed PDF and ``seal`` for the operator's PAdES seal
over the whole file (every issued PDF is sealed; ``verify_pdf`` requires the seal).

Names are imported lazily, so ``portal verify`` and the signing code do not pay for importing
WeasyPrint (about a second); only the ``render`` names load it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "signing": (
        "MESSAGE_PREFIX", "PKCS8_ED25519_PREFIX", "KeyFormatError", "SignatureImageError",
        "b64decode", "b64encode", "canonical_document", "canonical_json", "document_hash",
        "key_fingerprint", "parse_canonical_json", "public_key_from_b64", "seed_to_pkcs8",
        "sha256_hex", "sign", "signature_from_b64", "signed_message", "validate_signature_png",
        "verify_signature",
    ),
    "templates": (
        "TemplateInfo", "TemplateNotFound", "all_templates", "date_ru", "get_template",
        "reload_templates", "rub", "rub_words", "sample_context",
    ),
    "render": (
        "SignatureRecord", "URLNotAllowed", "context_from_document", "render_html", "render_pdf",
        "render_signed_pdf", "signatures_json", "warm_up",
    ),
    "verify": ("SignerInfo", "VerifyResult", "verify_pdf"),
    "seal": (
        "SEAL_FIELD", "SealCheck", "SealIdentity", "SealIdentityError", "check_seal",
        "ensure_seal_identity", "seal_pdf",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'portal.documents' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"portal.documents.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from portal.documents.render import (  # noqa: F401
        SignatureRecord, URLNotAllowed, context_from_document, render_html, render_pdf,
        render_signed_pdf, signatures_json, warm_up,
    )
    from portal.documents.signing import (  # noqa: F401
        MESSAGE_PREFIX, PKCS8_ED25519_PREFIX, KeyFormatError, SignatureImageError, b64decode,
        b64encode, canonical_document, canonical_json, document_hash, key_fingerprint,
        parse_canonical_json, public_key_from_b64, seed_to_pkcs8, sha256_hex, sign,
        signature_from_b64, signed_message, validate_signature_png, verify_signature,
    )
    from portal.documents.templates import (  # noqa: F401
        TemplateInfo, TemplateNotFound, all_templates, date_ru, get_template, reload_templates,
        rub, rub_words, sample_context,
    )
    from portal.documents.seal import (  # noqa: F401
        SEAL_FIELD, SealCheck, SealIdentity, SealIdentityError, check_seal, ensure_seal_identity,
        seal_pdf,
    )
    from portal.documents.verify import SignerInfo, VerifyResult, verify_pdf  # noqa: F401
