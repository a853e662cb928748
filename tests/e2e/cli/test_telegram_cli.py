"""`fsmtrader paper` with Telegram on, as a user runs it: the bot says it started and is
stopping, answers /help in its chat, and prints its token nowhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fsmtrader_testing.paper import clean_env, fsmtrader_argv, paper_args, session_toml
from fsmtrader_testing.telegram_api import running_bot_api

TOKEN = "987654:CliTestTokenForTheFakeBotApi_qwerty"
CHAT = 77


def test_paper_with_telegram_starts_answers_and_stops(tmp_path: Path) -> None:
    config, state = tmp_path / "c.toml", tmp_path / "state"
    with running_bot_api(TOKEN) as fake:
        config.write_text(
            session_toml(
                3, telegram={"enabled": True, "chat_ids": [CHAT], "api_base_url": fake.base_url}
            )
        )
        proc = subprocess.Popen(
            fsmtrader_argv(*paper_args(state, config, "--for", "30")),
            env=clean_env(FSMTRADER_TELEGRAM__TOKEN=TOKEN),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            started = fake.wait_sent(lambda m: "started" in m["text"], timeout_s=30)
            fake.message(CHAT, "/help")
            helped = fake.wait_sent(lambda m: "/forceexit" in m["text"], timeout_s=15)
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
        stopping = fake.wait_sent(lambda m: "stopping" in m["text"], timeout_s=10)
    assert proc.returncode == 0, err
    assert {started["chat_id"], helped["chat_id"], stopping["chat_id"]} == {CHAT}
    assert TOKEN not in out and TOKEN not in err
    for p in state.rglob("*"):
        if p.is_file():
            assert TOKEN.encode() not in p.read_bytes(), p
