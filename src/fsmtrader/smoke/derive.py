"""A scenario's settings: the user's, with the scenario's own market, sizes and prices on
top, validated like any settings; and the TOML file a scenario's subprocess reads.

Secrets never travel: they are left out of the derived settings and of every file (a
scenario trades on the simulated exchange; the API token of E goes by environment)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from pydantic import SecretBytes, SecretStr

from fsmtrader.config import Settings, load_settings

Table = dict[str, Any]

# What no scenario inherits: it trades its own symbols on the simulator, in its own
# folder, with no control plane, notifier or breaker of the user's to interfere.
OWN: dict[str, Table] = {
    "market": {"quote": "USDT", "default_mode": "paper", "modes": {}},
    "api": {"enabled": False, "token_file": ""},
    "exchange": {"key_file": ""},
    "telegram": {"enabled": False},
    "breakers": {"max_daily_loss": 0, "max_drawdown_pct": 0, "max_consecutive_losses": 0},
    "protect": {"enabled": False},
}
DROP = {"state_dir", "runs_dir", "database_url"}


def settings_table(s: Settings) -> Table:
    """Every setting as plain TOML-able values; secrets and unset (None) values left out."""
    out = _table(s.model_dump(mode="python"))
    for key in DROP:
        out.pop(key, None)
    return out


def _table(value: Mapping[str, Any]) -> Table:
    out: Table = {}
    for k, v in value.items():
        if v is None or isinstance(v, SecretStr | SecretBytes):
            continue
        out[str(k)] = _table(v) if isinstance(v, Mapping) else _value(v)
    return out


def _value(v: Any) -> Any:
    if isinstance(v, Decimal | PurePath):
        return str(v)
    if isinstance(v, Enum):
        return _value(v.value)
    if isinstance(v, list | tuple | set | frozenset):
        return [_value(x) for x in v]
    return v


def config_sha256(s: Settings) -> str:
    """The fingerprint of a configuration that a smoke report and ``fsmtrader preflight``
    agree on: SHA-256 of the redacted settings as canonical JSON (sorted keys, no spaces;
    a secret is ``***``, so the fingerprint never depends on or reveals its value)."""
    text = json.dumps(s.redacted_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def merge(base: Table, top: Mapping[str, Any]) -> Table:
    """``base`` with ``top`` on it, table by table (a value in ``top`` replaces)."""
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and v and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = dict(v) if isinstance(v, Mapping) else v
    return out


def scenario_table(user: Settings, own: Mapping[str, Any]) -> Table:
    """The user's settings, then :data:`OWN`, then the scenario's ``own``."""
    return merge(merge(settings_table(user), OWN), own)


def scenario_settings(user: Settings, own: Mapping[str, Any]) -> Settings:
    """:func:`scenario_table` validated (no environment, no file)."""
    return load_settings(None, env={}, overrides=scenario_table(user, own))


# --- TOML ------------------------------------------------------------------------------
def to_toml(table: Table) -> str:
    """``table`` as TOML: top-level keys first, then one ``[section]`` per table."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for name, keys in table.items():
        if isinstance(keys, dict):
            lines.append(f"[{name}]")
            lines += [f"{_key(k)} = {_toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"no TOML for {v}")
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        inner = ", ".join(f"{_key(str(k))} = {_toml_value(x)}" for k, x in v.items())
        return "{" + inner + "}"
    raise ValueError(f"no TOML for {type(v).__name__}")
