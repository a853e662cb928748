"""``fsmtrader control ...``: steer a running bot through its API — stop entries, resume,
force-exit, recover, reconcile now. The bot is found through ``STATE_DIR/api.json``
(host, port, pid; written while its API is up), the token comes from
FSMTRADER_API__TOKEN or ``api.token_file`` of ``--config``.

Exit codes: 0 done; 1 refused by the bot's state (the bot's own words are printed) or the
bot failed to do it; 2 no bot to talk to, no or a refused token, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from fsmtrader.cli.console import err, out
from fsmtrader.cli.errors import guard
from fsmtrader.cli.options import ConfigOpt, settings_from
from fsmtrader.config.sources import ENV_PREFIX
from fsmtrader.control.api_file import API_FILE, read_api_file
from fsmtrader.control.token import api_token
from fsmtrader.errors import FsmTraderError

if TYPE_CHECKING:  # httpx loads when a control command talks to the bot
    import httpx

TIMEOUT_S = 15.0  # the bot answers within 10 s (503 after that)
ENABLE_HINT = (
    f"enable the API in the bot's config ([api] enabled = true) and set {ENV_PREFIX}API__TOKEN"
    " (or api.token_file), then start the bot again"
)

control_app = typer.Typer(
    name="control",
    no_args_is_help=True,
    help="Steer a running bot through its API (stop entries, resume, force-exit, ...).",
)
StateDirOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="State directory of the running bot.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the bot's answer as JSON.")]
SymbolArg = Annotated[str, typer.Argument(help="e.g. BTC/USDT")]


class NoBot(FsmTraderError):
    """Nothing to talk to: no api.json, a dead pid, nobody listening."""


def find_bot(state_dir: Path) -> str:
    """The base URL of the bot serving ``state_dir``'s API."""
    try:
        address = read_api_file(state_dir)
    except ValueError as exc:
        raise NoBot(str(exc)) from None
    if address is None:
        raise NoBot(f"no running bot with its API in {state_dir} (no {API_FILE}); {ENABLE_HINT}")
    if not _alive(address.pid):
        raise NoBot(f"the bot that served {state_dir} (pid {address.pid}) is not running")
    return address.url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it is there
    return True


def post(base: str, token: str, action: str, body: dict[str, str]) -> httpx.Response:
    import httpx

    try:
        return httpx.post(
            f"{base}/api/v1/{action}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "X-Fsmtrader-Client": "cli"},
            timeout=TIMEOUT_S,
        )
    except httpx.TimeoutException:
        raise NoBot(f"{action}: the bot at {base} did not answer within {TIMEOUT_S:g} s") from None
    except httpx.HTTPError as exc:
        raise NoBot(f"no bot answers at {base} ({type(exc).__name__}); is it running?") from None


def _run(
    config: Path | None, state_dir: Path | None, action: str, args: dict[str, str], as_json: bool
) -> None:
    s = settings_from(config)
    folder = state_dir or s.state_dir
    base = find_bot(folder)
    token = api_token(s)
    if token is None:
        raise NoBot(f"no API token: set {ENV_PREFIX}API__TOKEN or api.token_file")
    resp = post(base, token, action, args)
    _answer(resp, action, as_json)


def _answer(resp: httpx.Response, action: str, as_json: bool) -> None:
    if resp.status_code == 401:
        _fail(2, f"{action}: token refused by the bot (HTTP 401)")
    try:
        body: Any = resp.json()
    except ValueError:
        _fail(1, f"{action}: the bot answered HTTP {resp.status_code} without JSON")
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if as_json:
        out.print_json(json.dumps(body, default=str))
    if resp.status_code == 200:
        if not as_json:
            out.print(escape(message or f"{action}: done"), highlight=False)
        return
    if not as_json:
        err.print(f"[red]refused:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(2 if resp.status_code in (400, 422) else 1)


def _fail(code: int, line: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(line)}", highlight=False)
    raise typer.Exit(code)


def _command(
    action: str, args: dict[str, str], config: Path | None, state_dir: Path | None, as_json: bool
) -> None:
    def run() -> None:
        try:
            _run(config, state_dir, action, args, as_json)
        except NoBot as exc:  # printed here: its "[api]" is text, not markup
            _fail(2, str(exc))

    guard(run)


@control_app.command("stopentry")
def stopentry(
    state_dir: StateDirOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """Stop new entries (open positions are still managed; a restart stays stopped)."""
    _command("stopentry", {}, config, state_dir, as_json)


@control_app.command("resume")
def resume(
    state_dir: StateDirOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """Allow new entries again (a halt only after a clean reconcile)."""
    _command("resume", {}, config, state_dir, as_json)


@control_app.command("forceexit")
def forceexit(
    symbol: SymbolArg,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exit a held position now, down the exit ladder (SYMBOL, or all)."""
    _command("forceexit", {"symbol": symbol}, config, state_dir, as_json)


@control_app.command("recover")
def recover(
    symbol: SymbolArg,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take a symbol out of ERROR."""
    _command("recover", {"symbol": symbol}, config, state_dir, as_json)


@control_app.command("reconcile")
def reconcile(
    state_dir: StateDirOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """Reconcile the running bot with its exchange now (look-ups only)."""
    _command("reconcile", {}, config, state_dir, as_json)
