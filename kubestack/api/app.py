"""The FastAPI application: the context built once, the feed run alongside, errors always as JSON bodies
``{"error": code, "detail": what is wrong}``, request metrics, the console at ``/``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from kubestack.approval import DecisionKeys
from kubestack.approval import default_path as decision_keys_path
from kubestack.api.auth import TokenBook
from kubestack.apisettings import ApiSettings
from kubestack.api.context import ApiContext, principal
from kubestack.api.errors import ApiError
from kubestack.api.feed import Feed
from kubestack.api.gate import RequestGate
from kubestack.api.metrics import ApiMetrics
from kubestack.api.publisher import Publisher
from kubestack.api.readmodel import ReadModel
from kubestack.api.routes_ask import router as ask_router
from kubestack.api.routes_decisions import router as decisions_router
from kubestack.api.routes_feedback import router as feedback_router
from kubestack.api.routes_read import router as read_router
from kubestack.api.routes_slack import router as slack_router
from kubestack.api.routes_system import metrics_text, router as system_router
from kubestack.api.routes_teams import router as teams_router
from kubestack.api.routes_topology import router as topology_router
from kubestack.api import routes_silences
from kubestack.api.routes_ack import router as ack_router
from kubestack.api.targets import Targets
from kubestack.errors import KafkaUnavailableError
from kubestack.settings import Settings

log = logging.getLogger(__name__)

CONSOLE = Path(__file__).parent / "console"
ROUTERS = (read_router, decisions_router, system_router, slack_router, ask_router, topology_router,
           teams_router, ack_router)
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
              413: "payload_too_large"}


def readmodel_path(settings: Settings) -> Path:
    return settings.home / "api" / "readmodel.sqlite3"


def build_context(settings: Settings, api: ApiSettings, tokens: TokenBook | None = None) -> ApiContext:
    store = ReadModel(readmodel_path(settings))
    publisher = Publisher(settings.kafka)
    holder: dict[str, Feed] = {}
    metrics = ApiMetrics(store.counts, lambda: holder["feed"].last_event_age())
    feed = holder["feed"] = Feed(settings.kafka, api.feed_group, store, publisher, metrics, settings.tenant)
    return ApiContext(settings=settings, api=api, store=store, publisher=publisher, feed=feed,
                      tokens=tokens or TokenBook(api.tokens), metrics=metrics, targets=Targets(api.agent_config),
                      decision_keys=DecisionKeys.load_or_create(settings.remediation.decision_keys
                                                                or decision_keys_path(settings.home)))


def create_app(settings: Settings, api: ApiSettings, tokens: TokenBook | None = None) -> FastAPI:
    ctx = build_context(settings, api, tokens)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await ctx.publisher.start()
        except KafkaUnavailableError as exc:  # the read side works without Kafka; writes retry when asked
            log.error("%s; decisions will be refused until it answers", exc)
        feed = asyncio.create_task(ctx.feed.run(), name="api-feed")
        silence_feed = routes_silences.start(silences)
        try:
            yield
        finally:
            for task in (feed, silence_feed):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await ctx.publisher.stop()
            ctx.store.close()

    app = FastAPI(title="KubeStack-AI API", version="1", lifespan=lifespan,
                  description="Incidents, root causes, remediation proposals and decisions, predictions, audit.",
                  openapi_tags=[{"name": n} for n in ("incidents", "proposals", "predictions", "audit", "system",
                                                      "slack", "knowledge", "topology", "teams", "silences",
                                                      "console")])
    app.state.context = ctx
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(feedback_router)  # operators' verdicts on ranked causes
    silences = routes_silences.install(app, ctx)
    _errors(app)
    # inside the request metrics (they count its refusals too): a body limit raised under Starlette's
    # BaseHTTPMiddleware reaches the route as a broken body, a 400, not the 413
    app.add_middleware(RequestGate, max_body_bytes=api.max_body_bytes, authenticate=ctx.tokens.authenticate)
    _request_metrics(app, ctx)
    _console(app, ctx)

    @app.get("/metrics", tags=["system"], response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
                        401: {"description": "No token, or an unknown one (unless api.metrics_public)"}})
    def metrics(request: Request) -> Response:
        """Prometheus metrics: requests, read-model rows, feed lag and last event age, decisions. Any role's token
        (Prometheus: ``authorization: {credentials: ...}``), unless ``api.metrics_public``."""
        if not ctx.api.metrics_public:
            principal(request)
        return metrics_text(ctx)

    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        broken = [e for e in errors if e.get("type") == "json_invalid"]
        if broken:
            why = (broken[0].get("ctx") or {}).get("error", "not JSON")
            return JSONResponse({"error": "malformed_json", "detail": f"the request body is not valid JSON: {why}"},
                                status_code=400)
        detail = [{"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": e.get("msg", "")} for e in errors]
        return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        detail = f"no route {request.method} {request.url.path}" if exc.status_code == 404 else exc.detail
        return JSONResponse({"error": code, "detail": detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal_error", "error_id": error_id,
                             "detail": f"an internal error occurred; quote {error_id} when reporting it"},
                            status_code=500)


def _request_metrics(app: FastAPI, ctx: ApiContext) -> None:
    @app.middleware("http")
    async def count(request: Request, call_next) -> Response:
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            ctx.metrics.requests.labels(getattr(route, "path", "unmatched"), request.method, str(status)).inc()


def _console(app: FastAPI, ctx: ApiContext) -> None:
    if ctx.api.console_enabled:
        app.mount("/console", StaticFiles(directory=CONSOLE), name="console")

    @app.get("/", tags=["console"], response_class=HTMLResponse, responses={404: {"description": "Console off"}})
    def console() -> Response:
        """The web console (a static page that talks to this API with the token it is given)."""
        if not ctx.api.console_enabled:
            return JSONResponse({"error": "not_found", "detail": "the console is off (api.console_enabled)"},
                                status_code=404)
        return FileResponse(CONSOLE / "index.html", media_type="text/html")
