"""A symbol's mode changes on restart only while it is flat: a paper session holding a
position refuses to start with that symbol observed or off (a ConfigError naming the
symbol, both modes and what to do; nothing written), in process and as the CLI's one
line with exit 2; once the symbol is flat again the same change starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsmtrader.config import Settings, load_settings
from fsmtrader.errors import ConfigError
from fsmtrader.session import PaperSession
from fsmtrader.store.sqlite import SqliteStore
from fsmtrader_testing.paper import paper_args, run_fsmtrader, session_toml


def write_config(tmp: Path, name: str, modes: dict[str, str]) -> Path:
    cfg = tmp / name
    text = session_toml(seed=4)
    if modes:
        pairs = ", ".join(f'"{k}" = "{v}"' for k, v in modes.items())
        text = text.replace("[market]\n", f"[market]\nmodes = {{ {pairs} }}\n")
    cfg.write_text(text)
    return cfg


def session(s: Settings, state: Path) -> PaperSession:
    return PaperSession(s, state, hours=48, speed=1800)


def holding(sess: PaperSession) -> str:
    """The symbol holding a position ("" when none does)."""
    held = [sym for sym, p in sess.engine.portfolio.positions.items() if p.qty > 0]
    return held[0] if held else ""


def flat(sess: PaperSession, sym: str) -> bool:
    pos = sess.engine.portfolio.positions.get(sym)
    return (pos is None or pos.qty == 0) and not sess.engine.router.open_intents(sym)


def saved_modes(state: Path) -> dict[str, str]:
    store = SqliteStore(state / "fsmtrader.db")
    try:
        return dict(json.loads(store.load().meta["modes"]))
    finally:
        store.close()


def test_a_mode_change_is_refused_while_holding_and_allowed_when_flat(tmp_path: Path) -> None:
    state = tmp_path / "state"
    paper = load_settings(write_config(tmp_path, "paper.toml", {}), env={})
    first = session(paper, state)
    try:
        first.start()
        first.run(should_stop=lambda: bool(holding(first)), stop_after_s=60)
        sym = holding(first)
    finally:
        first.close()
    assert sym, "no position within a minute"
    before = saved_modes(state)
    assert before[sym] == "paper"

    for mode in ("observe", "off"):
        cfg = write_config(tmp_path, f"{mode}.toml", {sym: mode})
        with pytest.raises(ConfigError) as err:
            session(load_settings(cfg, env={}), state)
        text = str(err.value)
        assert f"{sym} was paper and is now {mode}" in text and "holds a position" in text
        assert f"exit the position first, or keep mode paper for {sym}" in text
        assert saved_modes(state) == before  # nothing written
    cli = run_fsmtrader(*paper_args(state, cfg, hours=48, speed=1800), cwd=tmp_path)
    assert cli.returncode == 2, cli.stderr
    assert f"{sym} was paper and is now off" in cli.stderr and "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) <= 3, cli.stderr

    again = session(paper, state)  # the same modes: it manages the position to its exit
    try:
        again.start()
        again.run(should_stop=lambda: flat(again, sym), stop_after_s=90)
        assert flat(again, sym)
    finally:
        again.close()
    observed = load_settings(write_config(tmp_path, "observe.toml", {sym: "observe"}), env={})
    changed = session(observed, state)  # flat: the change starts
    try:
        assert changed.engine.mode(sym) == "observe"
    finally:
        changed.close()
    assert saved_modes(state)[sym] == "observe"
