"""What a STOP file asks: the word ``flatten`` (any case, as a word) exits positions too;
anything else, an empty file included, only stops entries. The signals' writer replaces
the file whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsmtrader.rollout.kill_switch import STOP_FILE, parse, write_stop


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", "stop"),
        ("stop\n", "stop"),
        ("flatten\n", "flatten"),
        ("please FLATTEN everything", "flatten"),
        ("--flatten", "flatten"),
        ("unflattened", "stop"),
        ("flattening", "stop"),
    ],
)
def test_parse(text: str, command: str) -> None:
    assert parse(text) == command


def test_write_stop_replaces_the_file_whole(tmp_path: Path) -> None:
    assert write_stop(tmp_path, "stop") == tmp_path / STOP_FILE
    assert (tmp_path / STOP_FILE).read_text() == "stop\n"
    write_stop(tmp_path, "flatten")
    assert (tmp_path / STOP_FILE).read_text() == "flatten\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [STOP_FILE]  # no temp file left
