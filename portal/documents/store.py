"""Signed documents in the database: render once, store with SHA-256, serve the stored bytes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

from portal.clock import now
from portal.documents.render import SignatureRecord, render_signed_pdf
from portal.documents.signing import canonical_json, key_fingerprint, public_key_from_b64, sha256_hex
from portal.documents.tables import Document, Signature, SignatureImage


@dataclass(frozen=True)
class NewSignature:
    full_name: str
    role: str
    email: str
    member_id: int
    member_key: dict
    signature_b64: str
    signed_at: dt.datetime
    ip: str
    user_agent: str


@dataclass(frozen=True)
class Rendered:
    template_id: str
    template_version: int
    title: str
    canonical: bytes
    hash: str
    pdf: bytes
    pdf_sha256: str


def operator_certificate_sha256(settings) -> str | None:
    """The SHA-256 of the operator's seal certificate, when this installation has one."""
    from portal.documents.seal import certificate_sha256_in

    return certificate_sha256_in(settings.data_dir)


def accepted_seal_certificates(settings) -> list[str] | None:
    """The seal certificates /verify accepts: this installation's own and the published ones (PORTAL_SEAL_SHA256,
    which keeps a replaced certificate's fingerprint so that what it sealed still verifies)."""
    own = operator_certificate_sha256(settings)
    accepted = list(dict.fromkeys([*([own] if own else []), *settings.seal_sha256]))
    return accepted or None


def verify_url(settings, document_hash: str) -> str:
    return f"{settings.base_url}/verify?hash={document_hash}"


_pool: concurrent.futures.ProcessPoolExecutor | None = None


def _worker_init() -> None:
    from portal.documents import render

    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    render.warm_up()


def render_pool() -> concurrent.futures.ProcessPoolExecutor:
    """Worker processes for WeasyPrint (CPU-bound): the event loop stays free and every core is used."""
    global _pool
    if _pool is None:
        workers = max(1, min(4, os.cpu_count() or 1))
        _pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
    return _pool


def shutdown_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


def _render_signed(template_id: str, document: dict, record: SignatureRecord, url: str, seal_dir: str,
                   operator_name: str) -> bytes:
    """In a worker process: the signed PDF, sealed by the operator."""
    from portal.documents.seal import ensure_seal_identity, seal_pdf

    pdf = render_signed_pdf(template_id, document, None, [record], url)
    return seal_pdf(pdf, ensure_seal_identity(Path(seal_dir), operator_name))


async def render_package(settings, documents: list[tuple[str, str, dict]], signatures: list[NewSignature],
                         image_png: bytes, image_sha256: str) -> list[Rendered]:
    """Render and seal each signed PDF in the worker processes (outside any transaction: the slow part)."""
    from portal.documents.signing import document_hash

    loop = asyncio.get_running_loop()
    jobs = []
    for (template_id, title, document), sig in zip(documents, signatures):
        doc_hash = document_hash(document)
        public_key = public_key_from_b64(sig.member_key["public_key"])
        record = SignatureRecord(
            full_name=sig.full_name, role=sig.role, email=sig.email, key_fingerprint=key_fingerprint(public_key),
            public_key_b64=sig.member_key["public_key"], signature_b64=sig.signature_b64, image_sha256=image_sha256,
            image_png=image_png, signed_at=sig.signed_at, ip=sig.ip, user_agent=sig.user_agent,
            document_hash=doc_hash,
        )
        job = loop.run_in_executor(render_pool(), _render_signed, template_id, document, record,
                                   verify_url(settings, doc_hash), str(settings.data_dir),
                                   settings.operator.name_short)
        jobs.append((template_id, document["template_version"], title, canonical_json(document), doc_hash, job))
    out = []
    for template_id, version, title, canonical, doc_hash, job in jobs:
        pdf = await job
        out.append(Rendered(template_id, version, title, canonical, doc_hash, pdf, sha256_hex(pdf)))
    return out


async def save_image(png: bytes, sha256: str) -> int:
    row = await SignatureImage.select(SignatureImage.id).where(SignatureImage.sha256 == sha256).first()
    if row:
        return row["id"]
    rows = await SignatureImage.insert(SignatureImage(sha256=sha256, png=png, created_at=now())).returning(
        SignatureImage.id)
    return rows[0]["id"]


async def save_package(member_id: int, package: str, rendered: list[Rendered], signatures: list[NewSignature],
                       image_png: bytes, image_sha256: str) -> list[int]:
    """Store the documents and their signatures; call inside the signing transaction."""
    image_id = await save_image(image_png, image_sha256)
    ids = []
    for doc, sig in zip(rendered, signatures):
        rows = await Document.insert(
            Document(member=member_id, package=package, template_id=doc.template_id,
                     template_version=doc.template_version, title=doc.title, canonical_json=doc.canonical.decode(),
                     document_hash=doc.hash, pdf=doc.pdf, pdf_sha256=doc.pdf_sha256, created_at=now())
        ).returning(Document.id)
        doc_id = rows[0]["id"]
        await Signature.insert(
            Signature(document=doc_id, member=sig.member_id, member_key=sig.member_key["id"], full_name=sig.full_name,
                      role=sig.role, email=sig.email, signature_b64=sig.signature_b64, image=image_id,
                      signed_at=sig.signed_at, ip=sig.ip, user_agent=sig.user_agent)
        )
        ids.append(doc_id)
    return ids


LIST_COLUMNS = (Document.id, Document.member, Document.package, Document.template_id, Document.title,
                Document.document_hash, Document.pdf_sha256, Document.created_at)


async def documents_of(member_id: int, *, package: str | None = None, with_canonical: bool = False) -> list[dict]:
    """A member's signed documents, oldest first; only those of one package (e.g. "pd_consent") if given."""
    columns = (*LIST_COLUMNS, Document.canonical_json) if with_canonical else LIST_COLUMNS
    q = Document.select(*columns).where(Document.member == member_id)
    if package is not None:
        q = q.where(Document.package == package)
    return await q.order_by(Document.id)


async def pdf_of(document_id: int, member_id: int | None = None) -> dict | None:
    """The stored PDF; with member_id, only that member's own document."""
    q = Document.select(Document.id, Document.pdf, Document.pdf_sha256, Document.template_id, Document.member).where(
        Document.id == document_id)
    if member_id is not None:
        q = q.where(Document.member == member_id)
    return await q.first()


async def find_by_hash(value: str) -> dict | None:
    """The document with this hash (or this PDF's SHA-256) as it is now: a document re-issued with more
    signatures or countersigned keeps its hash, and the latest issue is the one to show."""
    value = value.strip().lower()
    return await Document.select(*LIST_COLUMNS).where(
        (Document.document_hash == value) | (Document.pdf_sha256 == value)).order_by(
        Document.id, ascending=False).first()


async def signatures_by_document(document_ids: list[int]) -> dict[int, list[dict]]:
    """The signatures of several documents in one query, by document id."""
    found: dict[int, list[dict]] = {doc_id: [] for doc_id in document_ids}
    if not document_ids:
        return found
    rows = await Signature.select(
        Signature.document, Signature.full_name, Signature.role, Signature.email, Signature.signed_at, Signature.ip,
        Signature.member_key.fingerprint, Signature.member_key.revoked_at,
    ).where(Signature.document.is_in(document_ids)).order_by(Signature.id)
    for row in rows:
        found[row["document"]].append(row)
    return found


async def signatures_of(document_id: int) -> list[dict]:
    return await Signature.select(
        Signature.full_name, Signature.role, Signature.email, Signature.signed_at, Signature.ip,
        Signature.member_key.fingerprint, Signature.member_key.revoked_at,
    ).where(Signature.document == document_id).order_by(Signature.id)
