"""The control plane's web app: the read API, the controls, the push stream, Prometheus
metrics and the dashboard page, every one behind the bearer token.

It runs on uvicorn's loop in a thread of the bot's own process (``control.server``) and
never touches engine objects: reads go through one read-only ``BookReader`` owned by
that loop's thread, records come through the ``RecordFeed``, controls go to the
``ControlDesk`` (run by the engine's own thread between two stimuli).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from fsmtrader.control.auth import BearerAuth
from fsmtrader.control.routes_common import ApiContext, Problem, Reads
from fsmtrader.control.routes_control import control_routes
from fsmtrader.control.routes_read import read_routes
from fsmtrader.control.stream import StreamHub
from fsmtrader.errors import StoreError

__all__ = ["ApiContext", "make_app"]

STATIC = Path(__file__).with_name("static")
DASHBOARD_FILE = "dashboard.html"
PAGE_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


def make_app(ctx: ApiContext, *, heartbeat_s: float | None = None) -> FastAPI:
    """The app for one running bot; ``heartbeat_s`` shortens the stream's idle comment
    (tests)."""
    app = FastAPI(
        title="fsmtrader control plane",
        version="1",
        description=(
            "Watch and steer a running fsmtrader bot. Every request needs "
            "`Authorization: Bearer <token>` (401 otherwise). Money values are strings of "
            "decimals."
        ),
        docs_url=None,  # Swagger UI would load its scripts from a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    reads = Reads(ctx.db_path, ctx.state_dir)
    hub = StreamHub(
        ctx.feed,
        ctx.metrics,
        queue_size=ctx.stream_queue,
        audit=reads,
        **({"heartbeat_s": heartbeat_s} if heartbeat_s is not None else {}),
    )
    app.state.hub = hub
    app.state.reads = reads
    app.include_router(read_routes(ctx, reads, hub))
    app.include_router(control_routes(ctx))
    _pages(app, ctx)
    _errors(app)
    app.add_middleware(BearerAuth, token=ctx.token, on_failure=ctx.metrics.auth_failure)
    return app


def _pages(app: FastAPI, ctx: ApiContext) -> None:
    @app.get("/", summary="The dashboard page", response_class=FileResponse)
    async def dashboard() -> Response:
        """One self-contained HTML page (inline script and style). The token may be given
        once as `?token=`; the page keeps it in memory and strips it from the address."""
        page = STATIC / DASHBOARD_FILE
        if not page.is_file():
            return JSONResponse(
                {"ok": False, "message": "the dashboard page is not installed"}, 404
            )
        return FileResponse(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        """The text exposition format (`fsmtrader_` prefix)."""
        body, content_type = ctx.metrics.render()
        return Response(body, media_type=content_type)

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming the field; the input itself is not echoed back."""
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"]) or "request"
        body = Problem(message=f"{where}: {first['msg']}", detail=detail)
        return JSONResponse(body.model_dump(), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        """404, 405, a bad header: one line, in the same shape as every other error."""
        body = Problem(message=str(exc.detail), detail=str(exc.detail))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(StoreError)
    async def unreadable(_request: Request, exc: StoreError) -> JSONResponse:
        """The database cannot be read now (not created yet, or a read failed)."""
        return JSONResponse(Problem(message=str(exc)).model_dump(), status_code=503)
