from litestar import Request, Response, get

from portal import db
from portal.cooperatives.tables import Cooperative
from portal.sites import ON_ANY_SITE, site_of
from portal.web import render


@get("/", name="home", opt=ON_ANY_SITE)
async def home(request: Request) -> object:
    """The operator's home page, or a cooperative's on its own domain: its name and what it does."""
    site = site_of(request)
    if site.is_operator:
        return render(request, "index.html")
    cooperative = await Cooperative.select().where(Cooperative.id == site.cooperative_id).first()
    return render(request, "cooperatives/home.html", {"cooperative": cooperative})


@get("/healthz", exclude_from_csrf=True, cache_control=None, opt=ON_ANY_SITE)
async def healthz() -> Response:
    if await db.ping():
        return Response({"status": "ok"})
    return Response({"status": "error", "detail": "database unavailable"}, status_code=503)
