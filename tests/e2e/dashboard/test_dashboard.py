"""The dashboard in a real headless Chromium against a real paper bot with its control plane:
the token is taken once and kept out of the address bar; a phase transition reaches the
page through the push stream alone; the push lag is measured and reaches /metrics; the stop
button asks first and then stops entries. No assertion on time: the waits are only bounds
on how long a broken page may take to fail."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Page, Request, Route
from prometheus_client.parser import text_string_to_metric_families

from .dashboard_bot import Bot, phase_records

WAIT_MS = 60_000

# Every change of a phase cell's text, as [symbol, text], recorded by the page itself from
# the DOM (a MutationObserver installed before the page's own script runs).
OBSERVE_PHASES = """
window.__phaseSeen = [];
new MutationObserver((muts) => {
  for (const m of muts) {
    const node = m.target.nodeType === 1 ? m.target : m.target.parentElement;
    const td = node && node.closest ? node.closest("td.phase") : null;
    if (!td) continue;
    const tr = td.closest("tr");
    window.__phaseSeen.push([tr ? tr.dataset.symbol : "", td.textContent]);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def open_dashboard(page: Page, bot: Bot) -> None:
    page.goto(bot.page_url())
    page.wait_for_selector("#symbols tbody tr[data-symbol]", timeout=WAIT_MS)


def changes_by_symbol(seen: list[list[str]]) -> dict[str, list[str]]:
    """Per symbol, the phases its cell showed after the first one, repeats collapsed."""
    shown: dict[str, list[str]] = {}
    for symbol, text in seen:
        row = shown.setdefault(symbol, [])
        if not row or row[-1] != text:
            row.append(text)
    return {symbol: row[1:] for symbol, row in shown.items()}


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


def test_the_token_is_taken_once_and_sent_on_every_call(page: Page, bot: Bot) -> None:
    calls: list[Request] = []
    page.on("request", lambda r: calls.append(r) if "/api/v1/" in r.url else None)
    open_dashboard(page, bot)
    page.wait_for_function("document.getElementById('conn').textContent === 'live'")
    assert "token" not in page.url
    assert bot.token not in page.content()
    assert calls, "the page called no API"
    assert all(r.headers.get("authorization") == f"Bearer {bot.token}" for r in calls)
    assert all(bot.token not in r.url for r in calls)


def test_a_wrong_token_gets_the_form_and_the_right_one_opens_the_page(page: Page, bot: Bot) -> None:
    """The bot answers a wrong token with its login form (401); the token typed there is
    sent once as ?token=, and the page strips it from the address."""
    answer = page.goto(f"{bot.base_url}/?token=not-the-token-at-all")
    assert answer is not None and answer.status == 401
    assert page.query_selector("#symbols") is None
    page.fill("input[name=token]", bot.token)
    page.click("button[type=submit]")
    page.wait_for_selector("#symbols tbody tr[data-symbol]", timeout=WAIT_MS)
    page.wait_for_function("!location.search.includes('token')", timeout=WAIT_MS)
    assert bot.token not in page.url


def test_a_transition_reaches_the_page_through_the_stream(page: Page, bot: Bot) -> None:
    """The status is fetched once only (later fetches are aborted), so every later change of
    a phase cell came from the push stream; each must be what the audit trail says that
    symbol went to, in the audit's order."""
    status_calls: list[str] = []

    def first_status_only(route: Route) -> None:
        status_calls.append(route.request.url)
        if len(status_calls) == 1:
            route.continue_()
        else:
            route.abort()

    page.route("**/api/v1/status", first_status_only)
    page.add_init_script(OBSERVE_PHASES)
    open_dashboard(page, bot)
    page.wait_for_function(
        """() => { const last = {}; let n = 0;
                   for (const [s, t] of window.__phaseSeen) {
                     if (s in last && last[s] !== t) n++;
                     last[s] = t; }
                   return n >= 3; }""",
        timeout=WAIT_MS,
    )
    seen: list[list[str]] = page.evaluate("window.__phaseSeen")
    shown = changes_by_symbol(seen)
    assert sum(len(v) for v in shown.values()) >= 3
    audit: dict[str, list[str]] = {}
    for rec in phase_records(bot.state_dir):
        audit.setdefault(rec["symbol"], []).append(rec["to"])
    for symbol, phases in shown.items():
        assert is_subsequence(phases, audit.get(symbol, [])), (symbol, phases)
    assert len(status_calls) >= 1


def lag_count(bot: Bot) -> float:
    text = bot.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "fsmtrader_push_lag_seconds":
            for sample in family.samples:
                if sample.name == "fsmtrader_push_lag_seconds_count":
                    return float(sample.value)
    return 0.0


def test_the_push_lag_is_measured_and_exported(page: Page, bot: Bot) -> None:
    before = lag_count(bot)
    open_dashboard(page, bot)
    page.wait_for_function("window.fsmLag.length > 0", timeout=WAIT_MS)
    samples: list[float] = page.evaluate("window.fsmLag")
    assert all(isinstance(x, int | float) and x >= -50 for x in samples)  # one clock, one host
    deadline = time.monotonic() + WAIT_MS / 1000
    while lag_count(bot) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lag_count(bot) > before
    page.wait_for_function("document.getElementById('lag-p95').textContent !== '-'")
    float(page.text_content("#lag-p50") or "x")
    float(page.text_content("#lag-p95") or "x")


def control_records(bot: Bot) -> list[dict[str, Any]]:
    lines = (bot.state_dir / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, filter(None, lines)) if r.get("kind") == "control"]


def test_the_row_and_reconcile_buttons_send_their_control(page: Page, bot: Bot) -> None:
    """Force exit on a row sends that row's symbol; the line shown is the bot's own answer,
    the one its audit record of that control holds. Recover shows only on a row in ERROR."""
    page.on("dialog", lambda d: d.accept())
    open_dashboard(page, bot)
    for tr in page.query_selector_all("#symbols tbody tr"):
        recover = tr.query_selector("button[data-action=recover]")
        assert recover is not None
        assert recover.is_visible() == (tr.get_attribute("data-phase") == "ERROR")
    symbol = page.get_attribute("#symbols tbody tr", "data-symbol")
    assert symbol
    page.click(f'tr[data-symbol="{symbol}"] button[data-action=forceexit]')
    prefix = f"forceexit {symbol}: "
    page.wait_for_function(
        f"document.getElementById('result').textContent.startsWith({json.dumps(prefix)})"
        " && !document.getElementById('result').textContent.endsWith(': sent')",
        timeout=WAIT_MS,
    )
    code, _, message = (page.text_content("#result") or "")[len(prefix) :].partition(" ")
    assert code in ("200", "409"), code
    rec = [r for r in control_records(bot) if r["action"] == "forceexit"][-1]
    assert (rec["symbol"], rec["result"], rec["message"]) == (symbol, int(code), message)

    page.click("#reconcile")
    page.wait_for_function(
        "document.getElementById('result').textContent.startsWith('reconcile: 200 ')",
        timeout=WAIT_MS,
    )
    rec = [r for r in control_records(bot) if r["action"] == "reconcile"][-1]
    assert page.text_content("#result") == f"reconcile: 200 {rec['message']}"


def test_text_from_the_bot_is_never_markup(page: Page, bot: Bot) -> None:
    """A refused control names what it was given; that text reaches the page (the alerts
    list) as text: the tag shows literally, its handler never runs."""
    hostile = "<img src=x onerror=window.__x=1>"
    resp = httpx.post(
        f"{bot.base_url}/api/v1/forceexit", json={"symbol": hostile}, headers=bot.headers()
    )
    assert resp.status_code == 400 and hostile in resp.json()["message"]
    open_dashboard(page, bot)
    page.wait_for_function(
        f"document.getElementById('alerts').textContent.includes({json.dumps(hostile)})",
        timeout=WAIT_MS,
    )
    assert page.query_selector("#alerts img") is None
    assert page.evaluate("window.__x") is None


def test_the_stop_button_asks_then_stops_entries(page: Page, bot: Bot) -> None:
    """Runs last in this module: the bot stays stopped."""
    asked: list[str] = []
    answer = {"accept": False}

    def on_dialog(d: Dialog) -> None:
        asked.append(d.message)
        if answer["accept"]:
            d.accept()
        else:
            d.dismiss()

    page.on("dialog", on_dialog)
    open_dashboard(page, bot)
    assert not bot.json("/api/v1/status")["entries_stopped"]
    page.click("#stopentry")
    page.wait_for_function(
        "document.getElementById('result').textContent.includes('cancelled')", timeout=WAIT_MS
    )
    assert asked and "stopentry" in asked[0]
    assert not bot.json("/api/v1/status")["entries_stopped"]
    assert page.get_attribute("#banner", "data-state") == "running"

    answer["accept"] = True
    page.click("#stopentry")
    page.wait_for_function(
        "document.getElementById('banner').dataset.state === 'stopped'", timeout=WAIT_MS
    )
    status: dict[str, Any] = bot.json("/api/v1/status")
    assert status["entries_stopped"]
    assert "ENTRIES STOPPED" in (page.text_content("#banner") or "")
    result = page.text_content("#result") or ""
    assert result.startswith("stopentry: 200"), result
    assert len(asked) == 2


@pytest.fixture(autouse=True)
def _no_page_errors(page: Page) -> Any:
    """A script error on the page fails the test that caused it."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield
    assert not errors, errors
