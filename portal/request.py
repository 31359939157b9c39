"""The request layer every page goes through: input cleaning, refusal of malformed requests, HEAD.

- Every form field and query parameter loses control characters and bidi overrides here, once, for all
  forms: a NUL breaks PostgreSQL, U+202E typed into a name turns «ИНН 7707083893» around in a signed PDF.
- A form body that is not valid UTF-8, or a path number no database column can hold, is a 400 with the
  Russian error page, never a 500.
- HEAD is answered wherever GET is (monitors use it), with the GET's headers and no body.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import FormMultiDict, MultiDict
from litestar.enums import RequestEncodingType
from litestar.types import Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from portal.web import PageError

# C0 controls but tab, line feed and carriage return; DEL and C1; the bidi marks, embeddings, overrides and
# isolates; the BOM and interlinear annotation marks.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                        "\ufeff\ufff9-\ufffb]")
BIGINT_MAX = 2**63 - 1
FORM_TYPES = (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART)


def strip_invisible(value: str) -> str:
    return _INVISIBLE.sub("", value)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return strip_invisible(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value  # an uploaded file


class PortalRequest(Request):
    """Litestar's request whose form and query parameters are already cleaned."""

    async def form(self) -> FormMultiDict:
        """The parsed form, cleaned; the cleaned values also replace the raw ones that Litestar's `data`
        extractors read, so a handler never sees what was not cleaned."""
        if getattr(self, "_portal_form", None) is None:
            try:
                await super().form()
            except UnicodeDecodeError:
                raise PageError(status_code=400, detail="Данные формы пришли в неверной кодировке. "
                                                        "Обновите страницу и отправьте форму ещё раз.")
            state = ScopeState.from_scope(self.scope)
            raw = state.form if isinstance(state.form, dict) else {}
            state.form = {strip_invisible(k): _clean(v) for k, v in raw.items()}
            self._portal_form = self._form = FormMultiDict.from_form_data(state.form)
        return self._portal_form

    @property
    def query_params(self) -> MultiDict[Any]:
        if getattr(self, "_portal_query", None) is None:
            self._portal_query = MultiDict([(strip_invisible(k), _clean(v))
                                            for k, v in super().query_params.multi_items()])
        return self._portal_query


async def before_request(request: PortalRequest) -> None:
    """Before every handler: forms are parsed and cleaned here; malformed paths are refused."""
    for value in request.path_params.values():
        if isinstance(value, int) and not -BIGINT_MAX <= value <= BIGINT_MAX:
            raise PageError(status_code=400, detail="В адресе слишком большое число — такой страницы нет.")
        if isinstance(value, str) and _INVISIBLE.search(value):
            raise PageError(status_code=400, detail="В адресе недопустимые символы.")
    if request.method not in ("GET", "HEAD") and request.content_type[0] in FORM_TYPES:
        await request.form()


def _without_body(send: Send) -> Send:
    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head


class Portal(Litestar):
    """The portal's Litestar app: the site resolved from the host first (SPEC §9); HEAD wherever GET."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from portal import sites

            if scope["path"] != "/healthz":  # the health check answers on any host, also with the database down
                site = await sites.resolve(self.state.settings, sites.host_of(scope))
                if site is None:
                    await sites.unknown_host(send)
                    return
                scope[sites.SCOPE_KEY] = site
            if scope["method"] == "HEAD":
                scope["method"] = "GET"
                send = _without_body(send)
        await super().__call__(scope, receive, send)
