"""The council's decision as a document of the engine: issued by the cooperative, not signed by a member.

Like a signed document it is PDF/A-3b with ``document.json`` (the canonical document: template, version,
SHA-256 of the template, the data and the issuer as ``signer``) and ``signatures.json`` attached — the latter
with no member signatures — so ``portal verify`` and ``/verify`` read it the same way; what vouches for it is
the operator's seal (PAdES over the whole file), checked against the published certificate fingerprint.
It is rendered and sealed in the worker processes (``store.render_pool``), outside any transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Mapping

from portal.documents.render import render_issued_pdf  # the engine's; tests reach it as decision.render_issued_pdf
from portal.documents.signing import canonical_json, document_hash, sha256_hex
from portal.documents.store import Rendered, render_pool, verify_url
from portal.documents.templates import get_template

TEMPLATE_ID = "admission_decision"


def issuer_of(cooperative: Mapping[str, Any]) -> dict[str, str]:
    """The ``signer`` of an issued document: the cooperative's council (no member key; the seal vouches)."""
    return {"full_name": cooperative["name_full"], "role": "Совет кооператива", "email": cooperative.get("email") or ""}


def _render_sealed(template_id: str, document: dict, url: str, issued_at: dt.datetime, seal_dir: str,
                   operator_name: str) -> bytes:
    """In a worker process: the issued PDF, sealed by the operator (as signed documents are)."""
    from portal.documents.seal import ensure_seal_identity, seal_pdf

    pdf = render_issued_pdf(template_id, document, url, issued_at)
    return seal_pdf(pdf, ensure_seal_identity(Path(seal_dir), operator_name))


async def render_sealed(settings, document: dict, issued_at: dt.datetime) -> Rendered:
    """Render and seal the decision in the worker pool; returns what ``store`` keeps of a document."""
    doc_hash = document_hash(document)
    loop = asyncio.get_running_loop()
    pdf = await loop.run_in_executor(render_pool(), _render_sealed, document["template_id"], document,
                                     verify_url(settings, doc_hash), issued_at, str(settings.data_dir),
                                     settings.operator.name_short)
    title = get_template(document["template_id"], document["template_version"]).title
    return Rendered(document["template_id"], document["template_version"], title, canonical_json(document),
                    doc_hash, pdf, sha256_hex(pdf))
