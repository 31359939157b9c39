"""Server-side sessions: the cookie holds only a random id; the store keeps the data under the id's hash.

A request with a session costs one lookup. The store is written only when the session changes (then the id
changes too, so a login never keeps an id from before it), when it is ended, and once an hour to slide the
expiry. Ending a session deletes its record: a copied cookie opens nothing after «Выйти», on any process.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from litestar.datastructures import Cookie
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.empty import value_or_default

from portal.clock import now

COOKIE = "portal_session"
TTL_SECONDS = 12 * 60 * 60
RENEW_AFTER_SECONDS = 60 * 60


def store_key(session_id: str, site: int | None = None) -> str:
    """The store's key of a session: of one site only — a session id shown on another cooperative's host is
    another key, so it finds nothing (SPEC §9). The operator's sessions keep their unprefixed keys."""
    material = session_id if site is None else f"{site}:{session_id}"
    return "session:" + hashlib.sha256(material.encode()).hexdigest()


def cookie_value(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == COOKIE and val:
                    return val
    return ""


def _dump(data: dict) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)


class SessionMiddleware:
    def __init__(self, app: ASGIApp, store, secure: bool) -> None:
        self.app = app
        self.store = store
        self.secure = secure

    def _cookie(self, value: str, max_age: int) -> tuple[bytes, bytes]:
        cookie = Cookie(key=COOKIE, value=value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=self.secure)
        return cookie.to_encoded_header()

    @staticmethod
    def _key(scope: Scope, session_id: str) -> str:
        site = scope.get("portal_site")
        return store_key(session_id, None if site is None or site.is_operator else site.cooperative_id)

    async def _load(self, scope: Scope, session_id: str) -> dict | None:
        if not session_id or len(session_id) > 100:
            return None
        raw = await self.store.get(self._key(scope, session_id))
        try:
            record = json.loads(raw) if raw else None
        except ValueError:
            return None
        return record if isinstance(record, dict) and isinstance(record.get("data"), dict) else None

    async def _save(self, scope: Scope, session_id: str, data: dict) -> None:
        record = {"data": data, "renewed": time.time(), "created": now().isoformat()}
        await self.store.set(self._key(scope, session_id), _dump(record).encode(), expires_in=TTL_SECONDS)

    async def _answer_headers(self, scope: Scope, session_id: str, record: dict | None, before: str) -> list:
        session = value_or_default(scope.get("session"), {}) or {}
        if not session:
            if record is not None:
                await self.store.delete(self._key(scope, session_id))
                return [self._cookie("", 0)]
            return []
        if record is not None and _dump(session) == before:
            if time.time() - float(record.get("renewed", 0)) < RENEW_AFTER_SECONDS:
                return []
            if not await self.store.exists(self._key(scope, session_id)):  # ended by «Выйти» while this request ran
                return []
            await self._save(scope, session_id, session)
            return [self._cookie(session_id, TTL_SECONDS)]
        if record is not None:
            if not await self.store.exists(self._key(scope, session_id)):  # ended while this request ran: stays ended
                return [self._cookie("", 0)]
            await self.store.delete(self._key(scope, session_id))
        new_id = secrets.token_urlsafe(32)
        await self._save(scope, new_id, session)
        return [self._cookie(new_id, TTL_SECONDS)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        if scope["type"] != "http" or (handler is not None and handler.opt.get("skip_session")):
            await self.app(scope, receive, send)
            return
        session_id = cookie_value(scope["headers"])
        record = await self._load(scope, session_id)
        data = record["data"] if record else {}
        before = _dump(data)
        scope["session"] = json.loads(before)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = await self._answer_headers(scope, session_id, record, before)
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
