"""Fixtures of the dashboard's browser tests: one real paper bot with its control plane,
and one headless Chromium (Debian's, by its path), per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .dashboard_bot import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, Bot, bot_toml, running_bot


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Bot]:
    """A paper session at 1800x (30 simulated minutes a second): entries, fills and exits
    within seconds. Asks for the browser first so a missing Chromium skips before it starts."""
    folder: Path = tmp_path_factory.mktemp("dashboard-bot")
    with running_bot(folder, bot_toml(7)) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()
