"""A stored PDF as a download: the bytes as stored, their SHA-256 as the ETag, cached only by the browser."""

from __future__ import annotations

from litestar import Request, Response

from portal.static import etag_matches


def pdf_response(request: Request, doc: dict) -> Response:
    etag = f'"{doc["pdf_sha256"]}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag_matches(request.headers.get("if-none-match", "").encode("latin-1", "replace"), etag.encode()):
        return Response(b"", status_code=304, headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{doc["template_id"]}-{doc["id"]}.pdf"'
    return Response(doc["pdf"], media_type="application/pdf", headers=headers)
