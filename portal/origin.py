"""Where a request came from, as services need it: the client's address and user agent (never a Request)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    ip: str = ""
    user_agent: str = ""


SYSTEM = Origin()


def origin_of(request) -> Origin:
    """The client address is the one the server resolved (the trusted proxies' X-Forwarded-For included)."""
    ip = request.client.host if request.client else ""
    return Origin(ip=ip or "", user_agent=request.headers.get("user-agent", "")[:1000])
