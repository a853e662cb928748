"""The page file itself: self-contained (nothing fetched from another origin, no build
step) and written so that no text from the bot is ever parsed as HTML."""

from __future__ import annotations

import re
from pathlib import Path

import fsmtrader

PAGE = Path(fsmtrader.__file__).parent / "control" / "static" / "dashboard.html"
SVG_NS = "http://www.w3.org/2000/svg"


def text() -> str:
    return PAGE.read_text(encoding="utf-8")


def test_the_page_loads_nothing_from_elsewhere() -> None:
    page = text()
    urls = set(re.findall(r"""(?:https?:)?//[\w.-]+[^\s"'<>)]*""", page)) - {SVG_NS}
    assert not urls, urls
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+stylesheet", page)
    assert not re.search(r"@import", page)


def test_no_data_is_parsed_as_html() -> None:
    page = text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):  # fmt: skip
        assert sink not in page, sink


def test_the_token_is_kept_in_memory_only() -> None:
    page = text()
    for store in ("localStorage", "sessionStorage", "document.cookie", "indexedDB"):
        assert store not in page, store
    assert "history.replaceState" in page
