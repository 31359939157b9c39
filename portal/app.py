"""create_app(): assembles every domain of the portal into one Litestar application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path
from typing import AsyncIterator

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.stores.registry import StoreRegistry
from litestar.template.config import TemplateConfig
from markupsafe import Markup, escape

from portal import db
from portal.clock import date_ru, datetime_ru
from portal.connection.api import openapi_config
from portal.cooperatives.service import ensure_operator
from portal.mail.service import run_sender
from portal.request import Portal, PortalRequest, before_request
from portal.sessions.middleware import SessionMiddleware
from portal.sites import SiteRouteMiddleware, site_or_none
from portal.sessions.store import make_store
from portal.settings import Settings, load_settings
from portal.static import static_files
from portal.web import (
    HTMX_SRI,
    HTMX_URL,
    SIGNATURE_PAD_SRI,
    SIGNATURE_PAD_URL,
    LoginRequired,
    http_exception_handler,
    internal_error_handler,
    login_required_handler,
    security_headers,
)

PACKAGE_DIR = Path(__file__).parent
logging.getLogger("weasyprint").setLevel(logging.WARNING)
logging.getLogger("fontTools").setLevel(logging.WARNING)
_URL_RE = re.compile(r"(https?://[^\s<>\"']+)")


def linkify(text: str) -> Markup:
    """Escape text and make its http(s) links clickable."""
    return Markup(_URL_RE.sub(lambda m: f'<a href="{m.group(1)}">{m.group(1)}</a>', str(escape(text))))


def current_user(request) -> dict | None:
    """Who is logged in on this request, for the header of every page (from the session, no query)."""
    session = request.scope.get("session") if request is not None else None
    if not isinstance(session, dict):
        return None
    if session.get("staff_id"):
        return {"label": session.get("staff_email", ""), "home": "/staff/", "home_label": "Консоль",
                "logout": "/staff/logout", "logout_all": "/staff/logout/all"}
    if session.get("member_id"):
        return {"label": session.get("member_email", ""), "home": "/cabinet", "home_label": "Кабинет",
                "logout": "/logout", "logout_all": "/logout/all"}
    return None


def _template_engine(settings: Settings) -> JinjaTemplateEngine:
    env = Environment(
        loader=FileSystemLoader(str(PACKAGE_DIR / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=not settings.production,  # production does not stat a template on every render
    )
    env.globals.update(
        htmx_url=HTMX_URL,
        htmx_sri=HTMX_SRI,
        signature_pad_url=SIGNATURE_PAD_URL,
        signature_pad_sri=SIGNATURE_PAD_SRI,
        operator_name=settings.operator.name_short,
        operator_short=settings.operator.name_short,
        dev_mode=not settings.production,
        current_user=current_user,
        site=site_or_none,
    )
    env.filters.update(linkify=linkify, datetime_ru=datetime_ru, date_ru=date_ru)
    return JinjaTemplateEngine.from_environment(env)


def route_handlers(settings: Settings) -> list:
    from portal.accounts.controller import JoinController, LoginController
    from portal.admissions.controller import StaffAdmissionsController
    from portal.applications.controller import StaffApplicationsController
    from portal.cabinet.controller import CabinetController
    from portal.documents.controller import VerifyController
    from portal.installation.controller import InstallController, InstallHopController
    from portal.installation.invite import InviteController, RegulationsController
    from portal.installation.staff import StaffInstallationsController
    from portal.connect.controller import ConnectController, StaffConnectController
    from portal.connection.controller import CabinetConnectionController, StaffConnectionsController
    from portal.connection.provision import StaffProvisionController
    from portal.connection.api import CabinetTokensController, operator_api
    from portal.connection.tls import tls_allowed
    from portal.mail.controller import DevMailController
    from portal.pricing.controller import pricing
    from portal.pages.controller import healthz, home
    from portal.payments.controller import CabinetPaymentController
    from portal.payments.staff import StaffPaymentsController
    from portal.payments.yookassa import CardPaymentController, yookassa_notification
    from portal.staff.controller import StaffAuthController, StaffConsoleController

    handlers: list = [
        home,
        healthz,
        StaffAuthController,
        StaffConsoleController,
        ConnectController,
        JoinController,
        LoginController,
        CabinetController,
        CabinetPaymentController,
        StaffApplicationsController,
        StaffAdmissionsController,
        VerifyController,
        StaffConnectController,
        CabinetConnectionController,
        StaffInstallationsController,
        StaffConnectionsController,
        StaffProvisionController,
        StaffPaymentsController,
        pricing,
        CardPaymentController, yookassa_notification,
        CabinetTokensController, operator_api,
        tls_allowed,
        InstallController, InstallHopController,
        InviteController, RegulationsController,
        static_files("/static", PACKAGE_DIR / "static", name="static", cache_control="public, max-age=3600",
                     sites="any"),
    ]
    if not settings.production:
        handlers.append(DevMailController)
    if (settings.site_dir / "index.html").exists():
        handlers.append(static_files("/docs", settings.site_dir, name="docs", html_mode=True,
                                     cache_control="public, max-age=600"))
    return handlers


async def startup(settings: Settings) -> None:
    """What the app needs before its first request: the database pool and the operator cooperative."""
    from portal.documents.seal import ensure_seal_identity

    await db.start(settings)
    await ensure_operator(settings.operator, settings.base_url)
    ensure_seal_identity(settings.data_dir, settings.operator.name_short)
    if settings.operator_url:  # a self-hosted instance: its cooperative comes from the operator, or no start
        from portal.connection.instance import sync_from_operator

        try:
            await sync_from_operator(settings)
        except Exception:
            await db.stop(settings)  # the pool's threads would keep the refused worker process alive
            raise


def create_app(settings: Settings | None = None, *, run_mail_sender: bool = True) -> Portal:
    settings = settings or load_settings()
    db.configure_database(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await startup(settings)
        stop = asyncio.Event()
        from portal.connection.background import run_connections

        tasks = [asyncio.create_task(run_sender(settings, stop)),
                 asyncio.create_task(run_connections(settings, stop))] if run_mail_sender else []
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                await task
            await db.stop(settings)
            from portal.documents.store import shutdown_pool

            await asyncio.to_thread(shutdown_pool)

    secret = settings.secret_bytes
    store = make_store(settings)
    app = Portal(
        route_handlers=route_handlers(settings),
        lifespan=[lifespan],
        template_config=TemplateConfig(engine=_template_engine(settings)),
        # No HTMXPlugin: its request class makes every request a reference cycle (HTMXRequest ↔ HTMXDetails)
        # that only the garbage collector frees; the portal reads htmx's headers itself (portal.web.is_htmx).
        csrf_config=CSRFConfig(
            secret=secret.hex(),
            cookie_secure=settings.production,
            cookie_samesite="lax",
        ),
        # Sessions and rate-limit counters live in the shared store, so every process sees the same ones.
        stores=StoreRegistry(default_factory=store.with_namespace),
        before_send=[security_headers(settings.production)],
        middleware=[SiteRouteMiddleware, DefineMiddleware(SessionMiddleware, store=store.with_namespace("sessions"),
                                     secure=settings.production)],
        exception_handlers={
            HTTPException: http_exception_handler,
            LoginRequired: login_required_handler,
            Exception: internal_error_handler,
        },
        request_max_body_size=5 * 1024 * 1024,
        request_class=PortalRequest,
        before_request=before_request,
        # The schema of the operator's API only (/api/v1/openapi.json); pages and the staff console are left out.
        openapi_config=openapi_config(),
        include_in_schema=False,
        debug=False,
    )
    app.state.settings = settings
    return app
