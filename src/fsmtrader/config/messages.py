"""Error translation: pydantic's ValidationError -> one readable line per problem.

Each line is ``key (from SOURCE): what is wrong and what is allowed (got value)``: the
dotted key, where the value came from, the kind and bounds read from the schema itself (so
a message cannot drift from the model), and the value as the user wrote it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from fsmtrader.config.display import show
from fsmtrader.config.schema import REMOVED_SETTINGS, Settings
from fsmtrader.config.sections import CROSS
from fsmtrader.config.sources import ENV_NESTED_DELIMITER, ENV_PREFIX, LoadContext

__all__ = ["Target", "dotted", "format_errors", "kind_and_bounds", "removed_hint", "resolve"]

_KIND_BY_TYPE: dict[Any, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    Decimal: "a decimal number",
    str: "a string",
    Path: "a path string",
}

_TYPE_ERRORS = {
    "int_type",
    "int_parsing",
    "int_from_float",
    "int_parsing_size",
    "float_type",
    "float_parsing",
    "decimal_type",
    "decimal_parsing",
    "bool_type",
    "bool_parsing",
    "string_type",
    "path_type",
    "list_type",
    "finite_number",
    "bool_for_number",
    "json_invalid",
    "json_type",
}

_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


@dataclass(frozen=True)
class Target:
    """What a ValidationError location points at: the model holding it, and the field."""

    model: type[BaseModel] | None  # the model whose field (or extra key) this is
    field: FieldInfo | None  # None for an unknown key
    item: bool  # the location is one element of a list field


def resolve(loc: Sequence[str | int]) -> Target:
    """Walk a location through the model classes (for allowed keys and bounds)."""
    model: type[BaseModel] | None = Settings
    info: FieldInfo | None = None
    item = False
    parent: type[BaseModel] | None = None
    for part in loc:
        if isinstance(part, int):
            item = True
            continue
        if model is None:
            return Target(parent, None, False)
        parent = model
        info = model.model_fields.get(part)
        if info is None:
            return Target(parent, None, False)
        item = False
        annotation = info.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return Target(parent, info, item)


def _bounds(metadata: Sequence[Any]) -> str:
    """Numeric bounds as text: ``between 0.1 and 50``, ``> 0``, ``>= 60``, ``> 0 and <= 9``."""
    lower = upper = ""
    lo: Any = None
    hi: Any = None
    for m in metadata:
        if isinstance(m, annotated_types.Gt):
            lower, lo = f"> {show(m.gt)}", m.gt
        elif isinstance(m, annotated_types.Ge):
            lower, lo = f">= {show(m.ge)}", m.ge
        elif isinstance(m, annotated_types.Lt):
            upper, hi = f"< {show(m.lt)}", m.lt
        elif isinstance(m, annotated_types.Le):
            upper, hi = f"<= {show(m.le)}", m.le
    if lower.startswith(">=") and upper.startswith("<="):
        return f"between {show(lo)} and {show(hi)}"
    return " and ".join(p for p in (lower, upper) if p)


def _lengths(metadata: Sequence[Any]) -> str:
    """List length bounds as text, e.g. ``1 to 10 entries``."""
    lo = hi = None
    for m in metadata:
        if isinstance(m, annotated_types.MinLen):
            lo = m.min_length
        elif isinstance(m, annotated_types.MaxLen):
            hi = m.max_length
    if lo is not None and hi is not None:
        return f"{lo} to {hi} entries"
    if lo is not None:
        return f"at least {lo} entr{'y' if lo == 1 else 'ies'}"
    if hi is not None:
        return f"at most {hi} entries"
    return ""


def _item_metadata(info: FieldInfo) -> tuple[Any, list[Any]]:
    """Type and constraints of a list field's elements (``list[Annotated[float, ...]]``)."""
    args = get_args(info.annotation)
    if not args:
        return Any, []
    element = args[0]
    if get_origin(element) is Annotated:
        base, *extra = get_args(element)
        meta: list[Any] = []
        for e in extra:
            meta.extend(e.metadata if isinstance(e, FieldInfo) else [e])
        return base, meta
    return element, []


def kind_and_bounds(target: Target) -> tuple[str, str]:
    """(kind, constraint) of a location, e.g. ``("a number", "between 0.1 and 50")``."""
    info = target.field
    if info is None:
        return "", ""
    annotation = info.annotation
    if target.item:
        base, meta = _item_metadata(info)
        return _KIND_BY_TYPE.get(base, "a value"), _bounds(meta)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation)), ""
    if get_origin(annotation) is list:
        base, meta = _item_metadata(info)
        kind = "a list of " + {
            float: "numbers",
            int: "whole numbers",
            str: "strings",
            Decimal: "decimal numbers",
        }.get(base, "values")
        element_bounds = _bounds(meta)
        if element_bounds:
            kind += f" each {element_bounds}"
        lengths = _lengths(info.metadata)
        return kind, (f"with {lengths}" if lengths else "")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a table of settings", ""
    return _KIND_BY_TYPE.get(annotation, "a valid value"), _bounds(info.metadata)


def removed_hint(key: str, action: str = "remove it") -> str:
    """For a key that was a setting once: that it was removed, and what to do instead."""
    instead = REMOVED_SETTINGS.get(key)
    return f"; {key} was removed: {instead}; {action}" if instead else ""


def _unknown_hint(loc: Sequence[str | int], model: type[BaseModel] | None) -> str:
    """A removed key says what replaced it; a typo (``take_proft_pct``) or a key outside its
    ``[section]`` gets a suggestion."""
    removed = removed_hint(dotted(loc))
    if removed or model is None or not loc:
        return removed
    key = str(loc[-1])
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.75)
    if close:
        return f", did you mean {close[0]}?"
    if model is Settings:
        for section, info in Settings.model_fields.items():
            sub = info.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel) and key in sub.model_fields:
                return f", did you mean {key} under [{section}]?"
    return ""


def _message(err: Mapping[str, Any], target: Target, loc: Sequence[str | int]) -> str:
    """The readable part after ``key:`` for one pydantic error."""
    etype: str = err["type"]
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    secret = target.field is not None and "Secret" in str(target.field.annotation)
    got = " (value hidden)" if secret else f" (got {show(err.get('input'))})"
    kind, constraint = kind_and_bounds(target)
    if etype == "extra_forbidden":
        keys = ", ".join(target.model.model_fields) if target.model else ""
        return f"unknown setting{_unknown_hint(loc, target.model)} (allowed: {keys})"
    if etype == CROSS:
        return f"{ctx['message']} (got {show(ctx['got'])})"
    if etype in _BOUND_ERRORS:
        if not constraint:  # no field metadata (should not happen): use pydantic's bound
            constraint = _bounds(
                [
                    annotated_types.Gt(ctx["gt"]) if "gt" in ctx else None,
                    annotated_types.Ge(ctx["ge"]) if "ge" in ctx else None,
                    annotated_types.Lt(ctx["lt"]) if "lt" in ctx else None,
                    annotated_types.Le(ctx["le"]) if "le" in ctx else None,
                ]
            )
        return f"must be {constraint}{got}"
    if etype in {"too_short", "too_long"}:
        lengths = _lengths(target.field.metadata) if target.field else ""
        return f"must have {lengths or 'a different number of entries'}{got}"
    if etype == "literal_error":
        return f"must be {kind or 'one of ' + str(ctx.get('expected'))}{got}"
    if etype in {"model_type", "model_attributes_type", "dict_type"}:
        return f"must be a table of settings{got}"
    if etype in _TYPE_ERRORS:
        text = f"must be {kind}" if kind else "has the wrong type"
        if constraint:
            text += f" {constraint}"
        return text + got
    if etype == "missing":
        return "is required"
    # Our own PydanticCustomErrors (non_decreasing, symbol_format, ...) and anything else.
    msg = str(err.get("msg", "is invalid"))
    msg = msg.removeprefix("Value error, ")
    return f"{msg}{got}"


def _has_path(data: Mapping[str, Any], keys: Sequence[str]) -> bool:
    node: Any = data
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _origin(keys: Sequence[str], ctx: LoadContext) -> str:
    """Where the value at ``keys`` came from: override, which env var, or the file."""
    if not keys:
        return ""
    if _has_path(ctx.overrides, keys):
        return "override"
    if _has_path(ctx.env_data, keys):
        present = {k.upper(): k for k in ctx.env}
        for n in range(len(keys), 0, -1):
            name = (ENV_PREFIX + ENV_NESTED_DELIMITER.join(keys[:n])).upper()
            if name in present:
                return present[name]
        return "environment"
    if ctx.path is not None and _has_path(ctx.file_data, keys):
        return str(ctx.path)
    return ""


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def format_errors(exc: ValidationError, ctx: LoadContext) -> list[str]:
    """One line per problem: ``key (from SOURCE): what is wrong and allowed (got value)``."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc: list[str | int] = list(err["loc"])
        if err["type"] == CROSS:  # a Settings-level rule names its key dotted
            loc.extend(str(err["ctx"]["field"]).split("."))
        # A [section] table that failed as a whole: its key is the section name itself.
        target = resolve(loc)
        keys = [p for p in loc if isinstance(p, str)]
        origin = _origin(keys, ctx)
        where = f" (from {origin})" if origin else ""
        line = f"{dotted(loc) or '<root>'}{where}: {_message(err, target, loc)}"
        if line not in lines:
            lines.append(line)
    return lines
