from litestar import Request, Response, get

from portal import db
from portal.web import render


@get("/", name="home")
async def home(request: Request) -> object:
    return render(request, "index.html")


@get("/healthz", exclude_from_csrf=True, cache_control=None)
async def healthz() -> Response:
    if await db.ping():
        return Response({"status": "ok"})
    return Response({"status": "error", "detail": "database unavailable"}, status_code=503)
