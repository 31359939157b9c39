"""/verify: anyone can check a signed PDF (upload) or look a document up by its hash."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from portal.documents import store
from portal.documents.registry import key_registrations
from portal.documents.signing import sha256_hex
from portal.web import post_rate_limit, render

MAX_UPLOAD = 10 * 1024 * 1024
VERIFY_LIMIT = post_rate_limit("verify", 30)


def _seal_context(settings) -> dict[str, Any]:
    """The published fingerprints shown on the page: the current seal certificate first, then the replaced ones
    (PORTAL_SEAL_SHA256), which keep verifying what they sealed."""
    current = store.operator_certificate_sha256(settings)
    published = list(dict.fromkeys([*([current] if current else []), *settings.seal_sha256]))
    return {"seal_sha256": published[0] if published else None, "seal_sha256_earlier": published[1:]}


async def _registered(value: str) -> dict | None:
    doc = await store.find_by_hash(value) if len(value.strip()) == 64 else None
    if doc is None:
        return None
    return {**doc, "signatures": await store.signatures_of(doc["id"])}


class VerifyController(Controller):
    path = "/verify"

    @get("/")
    async def page(self, request: Request) -> object:
        value = (request.query_params.get("hash") or "").strip().lower()
        context: dict[str, Any] = {"hash": value, "result": None, "registered": None, "error": None,
                                   "looked_up": bool(value), "file_error": None,
                                   **_seal_context(request.app.state.settings)}
        if value:
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                context["error"] = "Хеш — 64 шестнадцатеричных символа (0–9, a–f)."
            else:
                context["registered"] = await _registered(value)
        return render(request, "documents/verify.html", context, status_code=422 if context["error"] else 200)

    @post("/", middleware=[VERIFY_LIMIT.middleware], request_max_body_size=MAX_UPLOAD + 64 * 1024)
    async def upload(self, request: Request,
                     data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> object:
        from portal.documents.sandbox import verify_upload

        upload = data.get("file")
        content = await upload.read() if isinstance(upload, UploadFile) else b""
        context: dict[str, Any] = {"hash": "", "result": None, "registered": None, "error": None, "looked_up": True,
                                   "file_error": None, "key_checks": [],
                                   **_seal_context(request.app.state.settings)}
        if not content:
            context["file_error"] = "Выберите PDF-файл документа."
            return render(request, "documents/verify.html", context, status_code=422)
        pinned = store.accepted_seal_certificates(request.app.state.settings)
        # Anyone may upload: the check runs in a child process with memory and CPU limits.
        result = await asyncio.to_thread(verify_upload, content, seal_certificates=pinned)
        if result.refused:  # not a PDF, damaged, or over the decoding limits: nothing was checked
            context["file_error"] = result.reason
            return render(request, "documents/verify.html", context, status_code=422)
        context["result"] = result
        # Online, the key registry too: was each signature's key the member's registered key when it signed?
        context["key_checks"] = await key_registrations(result.signers)
        context["pdf_sha256"] = sha256_hex(content)
        registered = await _registered(context["pdf_sha256"])
        context["registered"] = registered
        context["same_file"] = registered is not None
        return render(request, "documents/verify.html", context)
