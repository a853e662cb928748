"""The audit trail's encoding and writer: the same bytes as before, fewer calls."""

from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal
from pathlib import Path

from fsmtrader.audit import JsonlWriter, dumps

RECORDS: list[dict[str, object]] = [
    {"kind": "phase", "ts": 1735690200000, "symbol": "BTC/USDT", "to": "IDLE", "seq": 1},
    {"z": None, "a": Decimal("0.008614216279567677156043922965"), "m": 1.5, "b": True},
    {"reason": 'close=2898.55 anchor=2991.84 ✓ "quoted"\n', "n": -3, "f": 1e-12},
    {"nan": math.nan, "inf": -math.inf, "big": 2**70, "empty": ""},
    {"nested": {"b": [1, 2.5, None], "a": "x"}, "list": []},
]


def reference(record: dict[str, object]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)


def test_dumps_is_canonical_json() -> None:
    for record in RECORDS:
        assert dumps(record) == reference(record)


def test_the_writer_writes_every_line_and_hashes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writer = JsonlWriter(path)
    records = [dict(r, i=i) for i in range(JsonlWriter.BATCH * 2 + 7) for r in RECORDS[:2]]
    for record in records:
        writer(record)
    writer.flush()  # a flush writes what is pending
    assert path.read_text().splitlines() == [reference(r) for r in records]
    writer({"last": 1})
    writer.close()
    data = path.read_bytes()
    assert data.decode().splitlines()[-1] == '{"last":1}'
    assert writer.lines == len(records) + 1
    assert writer.sha256 == hashlib.sha256(data).hexdigest()
    writer({"after": "close"})  # ignored, as before
    assert path.read_bytes() == data


def test_the_digest_read_mid_run_covers_every_line_so_far(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writer = JsonlWriter(path)
    for record in RECORDS:
        writer(record)
    digest = writer.sha256
    writer.flush()
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    writer.close()
