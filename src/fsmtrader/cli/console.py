"""The two consoles every command writes to: results on stdout, progress and errors on stderr."""

from __future__ import annotations

from rich.console import Console

# soft_wrap: an error stays one line in a pipe, a log or cron (rich would fold at 80).
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
