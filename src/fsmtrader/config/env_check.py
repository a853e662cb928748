"""Checks of the ``FSMTRADER_*`` environment that pydantic-settings does not make well.

pydantic-settings reports bad JSON in an env var only as "error parsing value for field
'market'", and silently ignores a variable whose name matches no setting; both are named
here instead: the variable, the key, and what to write.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fsmtrader.config.display import show
from fsmtrader.config.messages import dotted, kind_and_bounds, removed_hint, resolve
from fsmtrader.config.schema import Settings
from fsmtrader.config.sources import ENV_NESTED_DELIMITER, ENV_PREFIX

__all__ = ["NOT_SETTINGS", "check_env_json", "unknown_env"]


def _is_complex(info: FieldInfo) -> bool:
    """Lists and tables: the settings whose env value is JSON."""
    annotation = info.annotation
    return get_origin(annotation) in (list, dict) or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    )


def check_env_json(env: Mapping[str, str]) -> dict[str, str]:
    """Env vars for lists and tables must hold JSON; map each that doesn't to its problem."""
    problems: dict[str, str] = {}
    prefix = ENV_PREFIX.lower()
    for name, value in env.items():
        if not name.lower().startswith(prefix):
            continue
        keys = name[len(prefix) :].lower().split(ENV_NESTED_DELIMITER)
        target = resolve(keys)
        if target.field is None or not _is_complex(target.field):
            continue
        try:
            json.loads(value)
        except ValueError:
            kind, constraint = kind_and_bounds(target)
            default = target.field.get_default(call_default_factory=True)
            example = json.dumps(default) if isinstance(default, list) else '{"key": value}'
            line = f"{dotted(keys)} (from {name}): must be JSON for {kind}"
            if constraint:
                line += f" {constraint}"
            shown = "value hidden" if keys[0] == "exchange" else f"got {show(value)}"
            problems[name] = f"{line}, e.g. '{example}' ({shown})"
    return problems


# FSMTRADER_* variables that are not settings but are ours (read elsewhere on purpose).
NOT_SETTINGS = frozenset({"FSMTRADER_CRASH_AT"})


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """A misspelt FSMTRADER_* variable would be silently ignored: report it instead."""
    problems = []
    prefix = ENV_PREFIX.lower()
    top = set(Settings.model_fields)
    for name in env:
        if not name.lower().startswith(prefix) or name.upper() in NOT_SETTINGS:
            continue
        first = name[len(prefix) :].lower().split(ENV_NESTED_DELIMITER)[0]
        if first in top:
            continue
        removed = removed_hint(first, f"unset {name}")
        if removed:
            problems.append(f"{name}: not a setting{removed}")
            continue
        problems.append(
            f"{name}: not a setting (nested settings use a double underscore, "
            f"e.g. {ENV_PREFIX}RISK__POSITION_SIZE){_suggestion(first, top)}"
        )
    return problems


def _suggestion(first: str, top: set[str]) -> str:
    """The variable that was probably meant: a missing ``__``, or a close top-level name."""
    for section in top:
        if first.startswith(section + "_"):
            rest = first[len(section) + 1 :]
            return f"; did you mean {ENV_PREFIX}{section.upper()}__{rest.upper()}?"
    close = difflib.get_close_matches(first, sorted(top), n=1)
    if close:
        return f"; did you mean {ENV_PREFIX}{close[0].upper()}?"
    return ""
