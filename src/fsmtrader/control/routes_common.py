"""What every route module of the web app shares: the context the running bot gives it,
the web loop's one BookReader, and the shape of an error answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fsmtrader.control.desk import ControlDesk
from fsmtrader.control.feed import RecordFeed
from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader

Json = dict[str, Any]
Rows = list[dict[str, Any]]


@dataclass
class ApiContext:
    """What the app needs from the running bot (built by ``control.plane``)."""

    token: str  # never logged, never in a response
    db_path: Path
    state_dir: Path
    feed: RecordFeed
    desk: ControlDesk
    metrics: Metrics
    settings_view: dict[str, Any]  # Settings.redacted_dict()
    marks: Callable[[], Mapping[str, float]]
    now_ms: Callable[[], int]
    stream_queue: int  # per-client bound; a full queue drops that client

    def __repr__(self) -> str:  # a traceback's locals must not show the token
        return f"ApiContext(db_path={self.db_path!s}, token=<hidden>)"


class Reads:
    """The one BookReader of the web loop's thread, opened on first use (the database
    exists once the session has started)."""

    def __init__(self, db_path: Path, state_dir: Path) -> None:
        self.db_path = db_path
        self.state_dir = state_dir
        self._reader: BookReader | None = None

    def __call__(self) -> BookReader:
        if self._reader is None:
            self._reader = BookReader(self.db_path, self.state_dir)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class Problem(BaseModel):
    """An error answer: one line for people, and the fields at fault when there are any."""

    ok: bool = False
    message: str
    detail: list[dict[str, Any]] | str | None = None
