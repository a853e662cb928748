"""The page's push stream survives the bot going away: it says so, retries, and when the
bot is back (same address, same state directory) it resumes with ``after=<the last id it
saw>`` and carries on showing transitions."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Browser, Request

from .dashboard_bot import bot_toml, free_port, running_bot

WAIT_MS = 60_000
# How many times a phase cell showed another phase than before, counted from the DOM.
COUNT_CHANGES = """
window.__changes = 0;
const shown = {};
new MutationObserver((muts) => {
  for (const m of muts) {
    const node = m.target.nodeType === 1 ? m.target : m.target.parentElement;
    const td = node && node.closest ? node.closest("td.phase") : null;
    if (!td) continue;
    const symbol = td.closest("tr").dataset.symbol;
    if (symbol in shown && shown[symbol] !== td.textContent) window.__changes++;
    shown[symbol] = td.textContent;
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_the_stream_resumes_after_the_bot_restarts(browser: Browser, tmp_path: Path) -> None:
    toml = bot_toml(5, api={"port": free_port()})
    streams: list[str] = []
    context = browser.new_context()
    page = context.new_page()
    page.on("request", lambda r: _note_stream(r, streams))
    page.add_init_script(COUNT_CHANGES)
    try:
        with running_bot(tmp_path, toml) as bot:
            page.goto(bot.page_url())
            page.wait_for_function("window.fsmLag.length > 0", timeout=WAIT_MS)  # live records
            token = bot.token
        last_before = last_audit_id(bot.state_dir)
        page.wait_for_function(
            "document.getElementById('conn').textContent !== 'live'", timeout=WAIT_MS
        )
        seen = page.evaluate("window.__changes")
        with running_bot(tmp_path, toml, token=token):
            page.wait_for_function(
                "document.getElementById('conn').textContent === 'live'", timeout=WAIT_MS
            )
            page.wait_for_function(f"window.__changes > {seen}", timeout=WAIT_MS)
    finally:
        context.close()
    resumed = [int(m.group(1)) for u in streams if (m := re.search(r"after=(\d+)", u))]
    assert streams[0].endswith("/api/v1/stream")  # the first: live from now on
    assert resumed, streams
    assert 0 < resumed[-1] <= last_before  # an id the first bot committed and sent


def last_audit_id(state: Path) -> int:
    lines = (state / "audit.jsonl").read_text().splitlines()
    return max(int(json.loads(line)["audit_id"]) for line in lines if line.strip())


def _note_stream(r: Request, streams: list[str]) -> None:
    if "/api/v1/stream" in r.url:
        streams.append(r.url)
