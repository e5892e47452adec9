"""create_app(): the FastAPI application with its routers, error handlers and,
in the embedded default, the in-process job scheduler."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import text

from carepoints import __version__, ownership
from carepoints.api import router as api_router
from carepoints.config import get_settings
from carepoints.events.endpoints import fast_post_events
from carepoints.fhir import router as fhir_router
from carepoints.jobs.scheduler import Scheduler
from carepoints.kit import logs, migrate
from carepoints.kit import metrics as kit_metrics
from carepoints.kit.db import get_engine
from carepoints.kit.fastpath import FastPath
from carepoints.kit.requests import RequestContext
from carepoints.kit.web import JSON, install_error_handlers
from carepoints.notifications.login_codes import PatientLogin
from carepoints.pages import router as pages_router
from carepoints.pages.assets import StaticAssets
from carepoints.security import scope as security_scope
from carepoints.security.audit_requests import AuditRequests


def _tune_gc() -> None:
    """Keep the cyclic collector off the request path: everything alive at start
    (modules, metadata, compiled programme) is frozen out of its scans, and
    collections run far less often. Full collections of a warm heap otherwise
    stall every thread for tens of milliseconds (the p99 of event ingest)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    _tune_gc()
    settings = get_settings()
    scheduler = None
    if settings.scheduler != "off" and settings.is_sqlite:
        scheduler = Scheduler()
        scheduler.start()
    yield
    if scheduler is not None:
        scheduler.stop()


def create_app() -> FastAPI:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    try:
        metrics_allow = kit_metrics.parse_allow(settings.metrics_allow)
    except ValueError as exc:
        raise RuntimeError(f"CAREPOINTS_METRICS_ALLOW is not a list of CIDRs: {exc}") from None
    app = FastAPI(title="carepoints", version=__version__, lifespan=lifespan, default_response_class=JSON,
                  description="Patient engagement and points programme API (积分制患者管理).")
    install_error_handlers(app)
    security_scope.install(PatientLogin())  # (trust.auth) patient login and reach, from the patients domain
    ownership.install()  # (trust.auth) whose records path ids name, for patient tokens
    app.include_router(api_router)
    app.include_router(fhir_router)
    app.include_router(pages_router)  # HTML pages (carepoints.pages): /, /me/..., /staff/..., /admin/..., /terms
    app.mount("/static", StaticAssets(packages=[("carepoints", "static")]), name="static")  # vendored, no CDN

    # Probes and metrics: unauthenticated (API.md); /metrics may be limited to an allow-list.
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Alive: the process answers (no database access)."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSON:
        """Ready: the database answers and its schema is at the migrations' head (else 503 with a code)."""
        try:
            engine = get_engine()
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            current = migrate.is_current(engine)
        except Exception as exc:
            logging.getLogger("carepoints.readyz").warning("database unavailable (%s)", type(exc).__name__)
            return JSON({"status": "unavailable", "database": False, "error": "ready.database_unavailable",
                         "detail": "数据库不可用 / The database is unavailable"}, status_code=503)
        if not current:
            return JSON({"status": "migrations_pending", "database": True, "error": "ready.migrations_pending",
                         "detail": "数据库结构需要升级 / Database migrations are pending"}, status_code=503)
        return JSON({"status": "ok", "database": True})

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus text exposition (kit.metrics)."""
        if not kit_metrics.allowed(request.client.host if request.client else None, metrics_allow):
            raise kit_metrics.MetricsForbiddenError()
        return Response(kit_metrics.exposition(), media_type=kit_metrics.CONTENT_TYPE)

    # (trust.audit) one audit row per staff request / integration-key read, after the response
    app.add_middleware(AuditRequests)
    # Outermost of the app's own middleware (added last): the request id is set before any
    # other middleware (the audit's) reads scope["state"]["request_id"].
    app.add_middleware(RequestContext, access=settings.access_log)
    return app


def create_asgi() -> FastPath:
    """The application as served: the hottest endpoint on a lean ASGI route in
    front of the FastAPI app (whose own route for it documents and mirrors it),
    everything else, lifespan included, through the app."""
    return FastPath(create_app(), routes={("POST", "/api/v1/events"): fast_post_events},
                    access_log=get_settings().access_log)
