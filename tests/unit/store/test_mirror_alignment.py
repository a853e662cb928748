"""audit.jsonl cut back to the database's last audit id: what is kept, what is set aside."""

from __future__ import annotations

import json
from pathlib import Path

from fsmtrader.audit import align_mirror


def lines(*ids: int) -> str:
    return "".join(json.dumps({"audit_id": i, "kind": "t"}) + "\n" for i in ids)


def test_a_mirror_within_the_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert align_mirror(path, 5) == 0  # no file: nothing written yet
    path.write_text("")
    assert align_mirror(path, 5) == 0
    path.write_text(lines(1, 2, 3))
    assert align_mirror(path, 5) == 3 and path.read_text() == lines(1, 2, 3)
    assert not (tmp_path / "audit.jsonl.beyond-db").exists()


def test_lines_beyond_the_database_are_cut_and_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text(lines(1, 2, 3, 4, 5))
    assert align_mirror(path, 3) == 3
    assert path.read_text() == lines(1, 2, 3)
    assert (tmp_path / "audit.jsonl.beyond-db").read_text() == lines(4, 5)
    path.write_text(lines(1, 2))
    assert align_mirror(path, 0) == 0  # the database lost everything: so does the mirror
    assert path.read_text() == ""
    assert (tmp_path / "audit.jsonl.beyond-db").read_text() == lines(4, 5) + lines(1, 2)


def test_a_torn_or_unreadable_tail_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text(lines(1, 2) + '{"audit_id": 3, "ki')
    assert align_mirror(path, 9) == 2 and path.read_text() == lines(1, 2)
    path.write_text(lines(1) + "garbage\n" + lines(3))
    assert align_mirror(path, 9) == 3  # a readable last line within the database: kept
    path.write_text(lines(1) + "garbage\n" + lines(12))
    assert align_mirror(path, 9) == 1 and path.read_text() == lines(1)
