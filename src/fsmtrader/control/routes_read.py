"""The read API (GET ``/api/v1/...``) and the push stream: everything from the database,
read-only, through the web loop's one BookReader, and from the record feed."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query
from pydantic import BaseModel

from fsmtrader.control.reads import MAX_LIMIT, BookReader
from fsmtrader.control.routes_common import ApiContext, Json, Rows
from fsmtrader.control.stream import PushResponse, StreamHub

Reader = Callable[[], BookReader]
REDACTED = "***"


class Health(BaseModel):
    ok: bool
    pid: int
    now_ms: int
    last_id: int
    stream_clients: int


class ReconcileAnswer(BaseModel):
    report: Json | None


def scrub(value: Any, secret: str) -> Any:
    """``value`` with any string holding ``secret`` replaced (a second guard: the view is
    redacted already, and the token must never leave the process)."""
    if isinstance(value, dict):
        return {k: scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secret) for v in value]
    if isinstance(value, str) and secret and secret in value:
        return REDACTED
    return value


def last_event_id(header: str | None, after: int | None) -> int | None:
    """Where a stream resumes: ``Last-Event-ID`` (a browser's reconnect) wins over
    ``?after=``; neither: the live tail only."""
    if header is None or header.strip() == "":
        return after
    try:
        value = int(header.strip())
    except ValueError:
        raise HTTPException(400, "Last-Event-ID: must be a record id (an integer >= 0)") from None
    if value < 0:
        raise HTTPException(400, "Last-Event-ID: must be a record id (an integer >= 0)")
    return value


def read_routes(ctx: ApiContext, reads: Reader, hub: StreamHub) -> APIRouter:
    """Every GET of ``/api/v1``."""
    r = APIRouter(prefix="/api/v1", tags=["read"])
    _bot_routes(r, ctx, reads, hub)
    _money_routes(r, ctx, reads)
    _record_routes(r, reads)
    _stream_route(r, hub)
    return r


def _bot_routes(r: APIRouter, ctx: ApiContext, reads: Reader, hub: StreamHub) -> None:
    @r.get("/health", response_model=Health, summary="The bot is up")
    async def health() -> Health:
        """Answers as long as the bot's process serves the API: its pid, the session
        clock and the id of the last committed record."""
        return Health(
            ok=True,
            pid=os.getpid(),
            now_ms=ctx.now_ms(),
            last_id=ctx.feed.last_id(),
            stream_clients=len(hub.clients),
        )

    @r.get("/status", summary="Every symbol's phase, position and open order")
    async def status() -> Json:
        """Per symbol: phase, time in phase, decision_id, position, entry price, last
        price, unrealised PnL, open order and its state, errors; and the totals, the halt
        and the stop of entries. Prices are the engine's live marks."""
        return reads().status(ctx.now_ms(), dict(ctx.marks()))

    @r.get("/orders", summary="Open orders")
    async def orders() -> Rows:
        """The orders not yet in a final state, oldest first."""
        return reads().orders()

    @r.get("/settings", summary="The effective settings, secrets redacted")
    async def settings() -> Json:
        return dict(scrub(ctx.settings_view, ctx.token))


def _money_routes(r: APIRouter, ctx: ApiContext, reads: Reader) -> None:
    @r.get("/trades", summary="Closed trades, newest first")
    async def trades(
        symbol: Annotated[str | None, Query(description="Only this symbol")] = None,
        since: Annotated[
            int | None, Query(ge=0, description="Exited at or after (epoch ms)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> Rows:
        return reads().trades(symbol, since, limit)

    @r.get("/balance", summary="Cash, reservations, positions, exposure")
    async def balance() -> Json:
        return reads().balance()

    @r.get("/profit", summary="Profit summary of the closed trades")
    async def profit() -> Json:
        """Trades, wins, win rate, realised PnL, fees, best and worst trade."""
        return reads().profit()

    @r.get("/daily", summary="Profit per UTC day of exit")
    async def daily(days: Annotated[int, Query(ge=1, le=3660)] = 30) -> Rows:
        """The ``days`` days ending today (session clock), days without trades included."""
        return reads().daily(days, ctx.now_ms())

    @r.get("/ghosts", summary="Ghost orders by reason, and the ghost rate")
    async def ghosts() -> Json:
        """Orders decided but never sent: count, by reason, per entry signal."""
        return reads().ghosts()


def _record_routes(r: APIRouter, reads: Reader) -> None:
    @r.get("/reconcile", response_model=ReconcileAnswer, summary="The latest reconcile report")
    async def reconcile() -> ReconcileAnswer:
        """``report`` is null when no reconcile has run in this state directory yet."""
        return ReconcileAnswer(report=reads().reconcile_report())

    @r.get("/alerts", summary="Current halt and stop, recent alerts and controls")
    async def alerts(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Json:
        return reads().alerts(limit)

    @r.get("/audit", summary="The audit trail after an id")
    async def audit(
        after: Annotated[int, Query(ge=0, description="Records after this audit id")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 500,
    ) -> Rows:
        """Oldest first; each is the committed record plus its ``audit_id``."""
        return reads().audit(after, limit)


def _stream_route(r: APIRouter, hub: StreamHub) -> None:
    @r.get(
        "/stream",
        summary="Push stream of committed records (Server-Sent Events)",
        response_class=PushResponse,
        status_code=200,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream(
        after: Annotated[
            int | None, Query(ge=0, description="Replay records after this id")
        ] = None,
        last_event: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> PushResponse:
        """``id: <audit id>``, ``event: record``, ``data: {"id", "committed_ms", "record"}``
        (``"replay": true`` and possibly a null ``committed_ms`` for what is replayed).
        First what came after ``after`` (or ``Last-Event-ID``), then the live tail; ids
        strictly increase. A heartbeat comment every 15 s. A client that falls
        ``api.stream_queue`` records behind is dropped (reconnect from the last id)."""
        client = hub.connect(last_event_id(last_event, after))
        return PushResponse(hub, client)
