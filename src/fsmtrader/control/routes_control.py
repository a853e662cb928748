"""The controls (POST ``/api/v1/...``) and the dashboard's push-lag report.

A control is handed to the ControlDesk and run by the engine's own thread between two
stimuli; this side only waits for its answer, at most ``CONTROL_TIMEOUT_S`` (503 after
that). The ControlResult's status is the HTTP status: 200 done, 400 bad input, 409
refused in the bot's present state, 503 the bot is not there to do it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fsmtrader.control.lag_file import LagFile
from fsmtrader.control.routes_common import ApiContext

CONTROL_TIMEOUT_S = 10.0
MAX_LAG_SAMPLES = 10_000  # one report at most (the page posts every second)
CLOCK_SLACK_MS = 1000.0  # a page's clock may read a little behind the bot's: counted as 0


class ControlAnswer(BaseModel):
    ok: bool
    message: str
    data: dict[str, Any]


class SymbolBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: Annotated[
        str, Field(min_length=1, max_length=40, description="e.g. BTC/USDT, or all (forceexit)")
    ]


class LagBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    samples_ms: Annotated[list[float], Field(max_length=MAX_LAG_SAMPLES)]

    @field_validator("samples_ms")
    @classmethod
    def _finite(cls, samples: list[float]) -> list[float]:
        for ms in samples:
            if not math.isfinite(ms) or ms < -CLOCK_SLACK_MS:
                raise ValueError(
                    f"each sample is a finite lag in ms >= -{CLOCK_SLACK_MS:g} (got {ms!r})"
                )
        return samples


class LagAnswer(BaseModel):
    ok: bool
    observed: int


ANSWERS: dict[int | str, dict[str, Any]] = {
    code: {"model": ControlAnswer, "description": what}
    for code, what in (
        (400, "bad input (an unknown symbol)"),
        (409, "refused in the bot's present state; the message says why"),
        (503, "the bot is stopping, or did not answer within 10 s"),
    )
}


Run = Callable[[str, dict[str, str], str], Awaitable[JSONResponse]]

# Who asked, for the control's audit record: the client names itself in a header; only
# these names are taken (anything else is recorded as plain "api").
CLIENT_HEADER = "X-Fsmtrader-Client"
CLIENTS = ("cli", "dashboard", "telegram")


async def _who(
    x_fsmtrader_client: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str:
    return f"api/{x_fsmtrader_client}" if x_fsmtrader_client in CLIENTS else "api"


Who = Annotated[str, Depends(_who)]


def control_routes(ctx: ApiContext) -> APIRouter:
    """Every POST of ``/api/v1``."""
    r = APIRouter(prefix="/api/v1", tags=["control"])

    async def run(action: str, args: dict[str, str], who: str) -> JSONResponse:
        """Hand the control to the engine's thread; its answer, or 503 after 10 s (a
        control not started by then is cancelled)."""
        fut = ctx.desk.submit(action, args, who=who)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(fut), CONTROL_TIMEOUT_S)
        except TimeoutError:
            body = ControlAnswer(
                ok=False,
                message=f"{action}: the bot did not answer within {CONTROL_TIMEOUT_S:g} s",
                data={},
            )
            return JSONResponse(body.model_dump(), status_code=503)
        return JSONResponse(result.to_json(), status_code=result.status)

    _controls(r, run)
    _lag_route(r, ctx)
    return r


def _controls(r: APIRouter, run: Run) -> None:
    @r.post(
        "/stopentry", response_model=ControlAnswer, responses=ANSWERS, summary="Stop new entries"
    )
    async def stopentry(who: Who) -> JSONResponse:
        """Open positions are still managed; persisted, so a restart stays stopped.
        Refused (409) when entries are already stopped."""
        return await run("stopentry", {}, who)

    @r.post(
        "/resume",
        response_model=ControlAnswer,
        responses=ANSWERS,
        summary="Allow new entries again",
    )
    async def resume(who: Who) -> JSONResponse:
        """Lifts a stop; lifts a halt only when a reconcile finds the books right."""
        return await run("resume", {}, who)

    @r.post(
        "/forceexit",
        response_model=ControlAnswer,
        responses=ANSWERS,
        summary="Exit a held position now",
    )
    async def forceexit(body: SymbolBody, who: Who) -> JSONResponse:
        """Down the exit ladder, like any exit; ``{"symbol": "all"}`` exits every symbol
        in POSITION. Refused (409) for a symbol that holds nothing or is busy."""
        return await run("forceexit", {"symbol": body.symbol}, who)

    @r.post(
        "/recover",
        response_model=ControlAnswer,
        responses=ANSWERS,
        summary="Take a symbol out of ERROR",
    )
    async def recover(body: SymbolBody, who: Who) -> JSONResponse:
        """Refused (409) when the symbol is not in ERROR."""
        return await run("recover", {"symbol": body.symbol}, who)

    @r.post(
        "/reconcile",
        response_model=ControlAnswer,
        responses=ANSWERS,
        summary="Reconcile with the exchange now",
    )
    async def reconcile(who: Who) -> JSONResponse:
        """Look-ups only; ``data.reconcile`` is the report; a difference halts entries as
        at a start."""
        return await run("reconcile", {}, who)


def _lag_route(r: APIRouter, ctx: ApiContext) -> None:
    lag_file = LagFile(ctx.state_dir)  # the summary preflight reads once the bot is down

    @r.post(
        "/lag",
        response_model=LagAnswer,
        tags=["dashboard"],
        summary="Report push lags a dashboard measured",
    )
    async def lag(body: LagBody) -> LagAnswer:
        """Commit-to-browser lags in ms, exported as ``fsmtrader_push_lag_seconds``."""
        ctx.metrics.observe_push_lag(body.samples_ms)
        lag_file.add(body.samples_ms)
        return LagAnswer(ok=True, observed=len(body.samples_ms))
