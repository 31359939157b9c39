"""HTML and PDF rendering of document templates (WeasyPrint), and signed PDF/A-3b output.

* ``render_html(template_id, context)`` — self-contained HTML (print CSS inlined), for previews.
* ``render_pdf(template_id, context)`` — a plain PDF of the body, no signature page.
* ``render_signed_pdf(template_id, document, context, signatures, verify_url)`` — PDF/A-3b
  with the drawn signature(s) at the signature line, a final signature page and the
  attachments ``document.json`` (exact ``canonical_json(document)``), ``signatures.json`` and
  ``signature-<n>.png``. Signatures are verified before anything is rendered.

WeasyPrint may fetch only ``data:`` URIs and files inside ``pdf_templates/`` and this
package; any other URL aborts the render (``PortalURLFetcher``). The font configuration and
the parsed stylesheet are cached, and renders are serialised by a lock (WeasyPrint/Pango are
not guaranteed thread-safe) — call ``warm_up()`` at start-up to pay the first-render cost.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import mimetypes
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from markupsafe import Markup
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from portal.documents import templates as _templates
from portal.documents.signing import (
    DOCUMENT_FILE,
    SIGNATURES_FILE,
    SIGNATURES_FORMAT,
    canonical_json,
    document_hash,
    key_fingerprint,
    public_key_from_b64,
    sha256_hex,
    signature_file_name,
    signature_from_b64,
    signed_message,
    verify_signature,
)

PDF_VARIANT = "pdf/a-3b"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class SignatureRecord:
    """One signature of a document, as stored by the application and put into the PDF."""

    full_name: str
    role: str
    email: str
    key_fingerprint: str
    public_key_b64: str
    signature_b64: str
    image_sha256: str
    image_png: bytes = field(repr=False)
    signed_at: dt.datetime  # aware, UTC
    ip: str
    user_agent: str
    document_hash: str

    @property
    def message(self) -> bytes:
        return signed_message(self.document_hash, self.image_sha256)

    @property
    def image_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.image_png).decode("ascii")

    def check(self) -> None:
        """Raise ``ValueError`` unless the image hash, fingerprint and Ed25519 signature hold."""
        if self.signed_at.tzinfo is None:
            raise ValueError("signed_at must be an aware datetime")
        if sha256_hex(self.image_png) != self.image_sha256:
            raise ValueError("image_sha256 does not match image_png")
        public_key = public_key_from_b64(self.public_key_b64)
        if key_fingerprint(public_key) != self.key_fingerprint:
            raise ValueError("key_fingerprint does not match the public key")
        if not verify_signature(public_key, self.message, signature_from_b64(self.signature_b64)):
            raise ValueError(f"invalid signature of {self.full_name}")

    def to_json(self, n: int) -> dict[str, Any]:
        """The record as it goes into ``signatures.json`` (the PNG as a separate file)."""
        return {
            "n": n,
            "full_name": self.full_name,
            "role": self.role,
            "email": self.email,
            "algorithm": "Ed25519",
            "key_fingerprint": self.key_fingerprint,
            "public_key_b64": self.public_key_b64,
            "signature_b64": self.signature_b64,
            "document_hash": self.document_hash,
            "image_sha256": self.image_sha256,
            "image_file": signature_file_name(n),
            "message": self.message.decode("ascii"),
            "signed_at": self.signed_at.astimezone(dt.timezone.utc).isoformat(),
            "ip": self.ip or "",
            "user_agent": self.user_agent or "",
        }


def signatures_json(document_hash_hex: str, signatures: Sequence[SignatureRecord]) -> bytes:
    return canonical_json(
        {
            "format": SIGNATURES_FORMAT,
            "document_hash": document_hash_hex,
            "signatures": [record.to_json(n) for n, record in enumerate(signatures, start=1)],
        }
    )


# --------------------------------------------------------------------------- URL fetcher


class URLNotAllowed(ValueError):
    """The renderer was asked for a URL outside the portal's own files."""


def allowed_roots() -> tuple[Path, ...]:
    return (_templates.directory(), _templates.PACKAGE_DIR)


class PortalURLFetcher(URLFetcher):
    """Only ``data:`` URIs and local files under ``roots``; anything else raises."""

    def __init__(self, roots: Sequence[Path] | None = None) -> None:
        super().__init__(allowed_protocols={"data", "file"}, allow_redirects=False, fail_on_errors=True)
        self._roots = tuple(Path(root).resolve() for root in (roots or allowed_roots()))

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost"):
                raise URLNotAllowed(f"URL not allowed: {url}")
            path = Path(url2pathname(unquote(parts.path))).resolve()
            if not any(path.is_relative_to(root) for root in self._roots):
                raise URLNotAllowed(f"URL not allowed (outside the portal's files): {url}")
            if not path.is_file():
                raise URLNotAllowed(f"file not found: {url}")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type})
        raise URLNotAllowed(f"URL not allowed: {url}")

    def __call__(self, url: str):
        return self.fetch(url)


# --------------------------------------------------------------------------- caches

_render_lock = threading.RLock()


@lru_cache(maxsize=1)
def _font_config():
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


@lru_cache(maxsize=1)
def _fetcher() -> PortalURLFetcher:
    return PortalURLFetcher()


@lru_cache(maxsize=8)
def _stylesheet(set_name: str = ""):
    """The parsed print stylesheet of a template set (the current one, or a frozen version's own copy)."""
    from weasyprint import CSS

    return CSS(
        string=_templates.template_source(_templates.stylesheet_name(), set_name),
        base_url=_templates.set_directory(set_name).as_uri() + "/",
        url_fetcher=_fetcher(),
        font_config=_font_config(),
    )


def warm_up() -> None:
    """Load fonts, the stylesheet and the templates once (first render is the slow one)."""
    from weasyprint import HTML

    with _render_lock:
        _templates.all_templates()
        html = HTML(string="<p>Прогрев — warm-up</p>", url_fetcher=_fetcher())
        html.write_pdf(stylesheets=[_stylesheet()], font_config=_font_config())


# --------------------------------------------------------------------------- rendering


def render_html(template_id: str, context: Mapping[str, Any], *, inline_css: bool = True,
                version: int | None = None) -> str:
    """HTML of the document body (current version unless ``version``); ``inline_css`` embeds the stylesheet."""
    extra: dict[str, Any] = {}
    if inline_css:
        set_name = _templates.get_template(template_id, version).directory
        extra["inline_css"] = Markup(_templates.template_source(_templates.stylesheet_name(), set_name))
    return _templates.render_template(template_id, {**context, **extra}, version)


def _pdfa_finisher(_document: Any, pdf: Any) -> None:
    """Fix what WeasyPrint's PDF/A-3b writer leaves non-conforming (a ``write_pdf`` finisher).

    Runs on the pydyf objects after WeasyPrint has built them and before they are serialised:

    * ``/Interpolate false`` on every image XObject (and soft mask). WeasyPrint writes
      ``/Interpolate true`` for every image drawn with ``image-rendering: auto`` — the drawn
      signature and its alpha mask — also in PDF/A mode; ISO 19005-3 §6.2.8.1 forbids it.
      Done here, not in ``print.css``: the stylesheet is part of every template's SHA-256, and
      this way it holds for any image of any template.
    * the catalog's XMP metadata stream is written uncompressed (WeasyPrint compresses it
      for PDF/A-2/3; only PDF/A-1 §6.7.2 forbids that, but plain XMP is what the XMP
      specification recommends and what validators and non-PDF tools expect).
    * each attachment once in the catalog's ``/AF`` (ISO 19005-3 Annex E): WeasyPrint adds
      every file specification twice, once from the EmbeddedFiles name tree and once from
      its scan of the ``/Filespec`` objects.
    * no ambiguous stream ends (``_unambiguous_stream_end``).
    """
    import pydyf

    for pdf_object in pdf.objects:
        if isinstance(pdf_object, pydyf.Stream) and pdf_object.extra.get("Subtype") == "/Image":
            if "Interpolate" in pdf_object.extra:
                pdf_object.extra["Interpolate"] = "false"
    metadata = pdf.catalog.get("Metadata")
    if metadata is not None:
        pdf.objects[int(bytes(metadata).split()[0])].compress = False
    if "AF" in pdf.catalog:
        pdf.catalog["AF"] = pydyf.Array(dict.fromkeys(pdf.catalog["AF"]))
    write_line = pdf.write_line  # this instance only; pydyf adds offsets from what it writes
    pdf.write_line = lambda content, output: write_line(_unambiguous_stream_end(content), output)


_LF_END = b"\nendstream\nendobj"


def _unambiguous_stream_end(indirect_object: bytes) -> bytes:
    """End a stream whose data ends with CR by CR LF (not LF) before ``endstream``.

    pydyf puts one LF between the data and ``endstream``. When the (deflated) data happens to
    end with a CR byte (about one stream in 256), the bytes read ``CR LF endstream``, which a
    reader may take for a CR LF end-of-line: the data then looks one byte shorter than its
    /Length (ISO 19005-3 §6.1.7.1; page-validation's PDFA3B-STREAM-LENGTH-001). With CR LF as
    the end-of-line marker either reading gives /Length.
    """
    if indirect_object.endswith(b"\r" + _LF_END):
        return indirect_object[: -len(_LF_END)] + b"\r" + _LF_END
    return indirect_object


def _write_pdf(html_text: str, set_name: str = "", **options: Any) -> bytes:
    from weasyprint import HTML

    with _render_lock:
        html = HTML(
            string=html_text,
            base_url=_templates.set_directory(set_name).as_uri() + "/",
            url_fetcher=_fetcher(),
        )
        try:
            return html.write_pdf(stylesheets=[_stylesheet(set_name)], font_config=_font_config(), **options)
        except FatalURLFetchingError as exc:  # a BaseException in WeasyPrint: make it an ordinary error
            raise URLNotAllowed(str(exc.__cause__ or exc)) from exc


def render_pdf(template_id: str, context: Mapping[str, Any], *, pdf_variant: str | None = None,
               version: int | None = None) -> bytes:
    """A plain PDF of the document (no signatures, no attachments); a PDF/A variant gets ``_pdfa_finisher``."""
    set_name = _templates.get_template(template_id, version).directory
    options: dict[str, Any] = {"finisher": _pdfa_finisher} if pdf_variant else {}
    return _write_pdf(render_html(template_id, context, inline_css=False, version=version), set_name,
                      pdf_variant=pdf_variant, **options)


def context_from_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """Template context of a canonical document: ``{**document["data"], "signer": …}``."""
    data = document["data"]
    if not isinstance(data, Mapping) or "signer" in data:
        raise ValueError("document data must be the template context without 'signer'")
    return {**data, "signer": document["signer"]}


def qr_data_uri(url: str) -> str:
    import segno

    # PNG (drawn with image-rendering: pixelated) renders faster than the SVG path.
    return segno.make(url, error="m", micro=False).png_data_uri(scale=3, border=2)


def render_signed_pdf(
    template_id: str,
    document: Mapping[str, Any],
    context: Mapping[str, Any] | None,
    signatures: Sequence[SignatureRecord],
    verify_url: str,
) -> bytes:
    """The signed PDF/A-3b of SPEC §4 (see the module docstring).

    ``document`` is the canonical document (``signing.canonical_document``); the body is
    rendered from it, so what is printed is what was hashed. ``context`` may add keys that are
    not part of the document (or be None); keys present in both must be equal. Every signature
    must be valid for this document, otherwise ``ValueError`` is raised and nothing is rendered.
    """
    from weasyprint import Attachment

    version = document.get("template_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("the document names no template version")
    try:
        template = _templates.get_template(template_id, version)
    except _templates.TemplateNotFound:
        raise ValueError("the document was made for another template or template version") from None
    if (
        document.get("template_id") != template.id
        or document.get("template_version") != template.version
        or document.get("template_sha256") != template.sha256
    ):
        raise ValueError("the document was made for another template or template version")
    if not signatures:
        raise ValueError("a signed PDF needs at least one signature")
    doc_hash = document_hash(dict(document))
    for record in signatures:
        if record.document_hash != doc_hash:
            raise ValueError(f"signature of {record.full_name} is for another document")
        record.check()

    named_key = document["signer"].get("public_key")
    if named_key and all(r.public_key_b64 != named_key for r in signatures):
        raise ValueError("no signature with the signer's public key named in the document")

    derived = context_from_document(document)
    extra = dict(context or {})
    for key, value in derived.items():
        if key in extra and extra[key] != value:
            raise ValueError(f"context[{key!r}] differs from the signed document")
    signer_email = str(document["signer"].get("email", "")).lower()
    own = next((i for i, r in enumerate(signatures) if r.email.lower() == signer_email), 0)
    view = [
        {
            "full_name": r.full_name,
            "role": r.role,
            "email": r.email,
            "key_fingerprint": r.key_fingerprint,
            "public_key_b64": r.public_key_b64,
            "signature_b64": r.signature_b64,
            "image_sha256": r.image_sha256,
            "image_uri": r.image_uri,
            "signed_at": r.signed_at,
            "ip": r.ip,
            "user_agent": r.user_agent,
        }
        for r in signatures
    ]
    full_context = {
        **extra,
        **derived,
        "signature": view[own],
        "signatures": view,
        "signing": {
            "document_hash": doc_hash,
            "template_id": template.id,
            "template_version": template.version,
            "template_sha256": template.sha256,
            "verify_url": verify_url,
            "qr_uri": qr_data_uri(verify_url),
        },
    }
    html_text = render_html(template_id, full_context, inline_css=False, version=template.version)

    stamp = max(r.signed_at for r in signatures).astimezone(dt.timezone.utc).replace(tzinfo=None)
    attachments = [
        Attachment(
            string=canonical_json(dict(document)),
            name=DOCUMENT_FILE,
            description="Канонический документ (JSON); его SHA-256 — хеш документа",
            relationship="Source",
            created=stamp,
            modified=stamp,
        ),
        Attachment(
            string=signatures_json(doc_hash, signatures),
            name=SIGNATURES_FILE,
            description="Записи простых электронных подписей (Ed25519)",
            relationship="Supplement",
            created=stamp,
            modified=stamp,
        ),
    ]
    for n, record in enumerate(signatures, start=1):
        attachments.append(
            Attachment(
                string=record.image_png,
                name=signature_file_name(n),
                description=f"Изображение подписи № {n}: {record.full_name}",
                relationship="Data",
                created=stamp,
                modified=stamp,
            )
        )
    identifier = hashlib.sha256(("coopdoc-pdf:" + doc_hash).encode()).hexdigest()[:32].encode()
    return _write_pdf(
        html_text,
        template.directory,
        finisher=_pdfa_finisher,
        pdf_variant=PDF_VARIANT,
        attachments=attachments,
        pdf_identifier=identifier,
    )


def render_issued_pdf(template_id: str, document: Mapping[str, Any], url: str, issued_at: dt.datetime) -> bytes:
    """PDF/A-3b of a document the cooperative issues itself (the council's decision), not signed by a member:
    the body from the canonical document, a verification block (hash, link, QR — outside the hash),
    ``document.json`` and an empty ``signatures.json`` attached. Not sealed."""
    from weasyprint import Attachment

    template = _templates.get_template(template_id, document["template_version"])
    if (document.get("template_id"), document.get("template_sha256")) != (template.id, template.sha256):
        raise ValueError("the document was made for another template or template version")
    doc_hash = document_hash(dict(document))
    context = {**context_from_document(document),
               "issued": {"document_hash": doc_hash, "verify_url": url, "qr_uri": qr_data_uri(url)}}
    html_text = render_html(template_id, context, inline_css=False, version=template.version)
    stamp = issued_at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    attachments = [
        Attachment(string=canonical_json(dict(document)), name=DOCUMENT_FILE,
                   description="Канонический документ (JSON); его SHA-256 — хеш документа",
                   relationship="Source", created=stamp, modified=stamp),
        Attachment(string=signatures_json(doc_hash, []), name=SIGNATURES_FILE,
                   description="Подписей пайщиков нет: документ выдан кооперативом и скреплён его печатью",
                   relationship="Supplement", created=stamp, modified=stamp),
    ]
    identifier = hashlib.sha256(("coopdoc-pdf:" + doc_hash).encode()).hexdigest()[:32].encode()
    return _write_pdf(html_text, template.directory, finisher=_pdfa_finisher,
                             pdf_variant=PDF_VARIANT, attachments=attachments, pdf_identifier=identifier)
