"""The search space file: which settings a sweep varies, and over what.

``SPACE.toml`` names settings by their dotted key, each with a range or a list::

    "entry.drop_trigger_pct" = { low = 1, high = 5, step = 0.5 }
    "exit.take_profit_pct" = { low = 0.3, high = 5, log = true }
    "entry.anchor_window_min" = { low = 10, high = 240, step = 10 }   # an int setting
    "backtest.both_touch" = { choices = ["stop_first", "nearer_open_first"] }

(an unquoted ``entry.drop_trigger_pct = {...}`` or an ``[entry]`` table means the same).
Every key must be a setting, every bound and choice a value that setting allows: the
whole file is checked before a trial runs, and each problem is one line naming the key.
Ranges of whole-number settings are whole numbers; a setting is a float range, an int
range or a list of choices (choices are the only way to vary a string or bool setting).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from fsmtrader.config.display import show
from fsmtrader.config.messages import kind_and_bounds, resolve
from fsmtrader.errors import ConfigError

__all__ = ["Param", "Space", "load_space", "parse_space"]

_SPEC_KEYS = frozenset({"low", "high", "step", "log", "choices"})
Choice = str | int | float | bool


@dataclass(frozen=True)
class Param:
    """One swept setting. ``kind`` is ``float``, ``int`` or ``choice``; ``low``/``high``
    (and ``step``, ``log``) for the ranges, ``choices`` for a list."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    choices: tuple[Choice, ...] = ()

    def describe(self) -> str:
        """The range as a user would write it, for the sweep's header line."""
        if self.kind == "choice":
            return f"{self.key} in {show(list(self.choices))}"
        extra = f" step {show(self.step)}" if self.step is not None else ""
        extra += " log" if self.log else ""
        return f"{self.key} {show(self.low)}..{show(self.high)}{extra}"


@dataclass(frozen=True)
class Space:
    """The parsed space: its params in file order, and where it came from."""

    source: str
    params: tuple[Param, ...]

    def keys(self) -> list[str]:
        return [p.key for p in self.params]


def load_space(path: Path) -> Space:
    """Read and check ``path``; a ConfigError (one line per problem) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--space {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--space {path}: cannot read it ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--space {path}: invalid TOML: {exc}") from None
    return parse_space(data, str(path))


def parse_space(data: Mapping[str, Any], source: str) -> Space:
    """The space in ``data`` (a parsed TOML document), every problem reported at once."""
    problems: list[str] = []
    params: list[Param] = []
    for key, spec in _flatten(data):
        try:
            params.append(_param(key, spec))
        except ConfigError as exc:
            problems.append(f"{source}: {key}: {exc}")
    if not params and not problems:
        problems.append(
            f'{source}: no settings to sweep (e.g. "entry.drop_trigger_pct" = '
            "{ low = 1, high = 5 })"
        )
    if problems:
        raise ConfigError("\n".join(problems))
    return Space(source, tuple(params))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, spec) pairs: a table without a spec key is a section to walk into."""
    out: list[tuple[str, Any]] = []
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and value and not (_SPEC_KEYS & value.keys()):
            out.extend(_flatten(value, key + "."))
        else:
            out.append((key, value))
    return out


def _field(key: str) -> tuple[Any, Any]:
    """(annotation, validator) of the setting at ``key``; ConfigError when there is none."""
    parts = key.split(".")
    target = resolve(parts)
    info = target.field
    if info is None:
        allowed = ", ".join(target.model.model_fields) if target.model else ""
        raise ConfigError(f"not a setting (allowed here: {allowed})")
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        raise ConfigError("is a table of settings; name one of its keys")
    typ: Any = Annotated[annotation, *info.metadata] if info.metadata else annotation
    adapter: TypeAdapter[Any] = TypeAdapter(typ)
    return annotation, adapter


def _param(key: str, spec: Any) -> Param:
    """One entry of the file, checked against the setting it names."""
    annotation, adapter = _field(key)
    if not isinstance(spec, Mapping):
        raise ConfigError(
            "must be a table: { low = .., high = .. [, step = ..] [, log = true] } "
            f"or {{ choices = [..] }} (got {show(spec)})"
        )
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown field {', '.join(unknown)} (allowed: low, high, step, log, choices)"
        )
    kind, bounds = kind_and_bounds(resolve(key.split(".")))
    allowed = f"{kind} {bounds}".strip()
    if "choices" in spec:
        return replace(_choices(spec, adapter, allowed, numeric=annotation is not bool), key=key)
    if annotation is int:
        return replace(_range(spec, adapter, allowed, whole=True), key=key)
    if annotation in (float, Decimal):
        return replace(_range(spec, adapter, allowed, whole=False), key=key)
    raise ConfigError(f"is {kind or 'not a number'}: sweep it with choices = [..]")


def _choices(spec: Mapping[str, Any], adapter: Any, allowed: str, *, numeric: bool) -> Param:
    extra = sorted(set(spec) - {"choices"})
    if extra:
        raise ConfigError(f"choices cannot be combined with {', '.join(extra)}")
    values = spec["choices"]
    if not isinstance(values, list) or not values:
        raise ConfigError(f"choices must be a non-empty list (got {show(values)})")
    for value in values:
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"each choice must be a string, number or bool (got {show(value)})")
        if numeric and isinstance(value, bool):
            raise ConfigError(f"choice {show(value)} is not allowed: the setting must be {allowed}")
        _allowed(adapter, value, f"choice {show(value)}", allowed)
    if len({repr(v) for v in values}) != len(values):
        raise ConfigError(f"choices must not repeat (got {show(values)})")
    return Param("", "choice", choices=tuple(values))


def _range(spec: Mapping[str, Any], adapter: Any, allowed: str, *, whole: bool) -> Param:
    missing = [k for k in ("low", "high") if k not in spec]
    if missing:
        raise ConfigError(f"needs {' and '.join(missing)} (or choices = [..])")
    low, high, step = spec["low"], spec["high"], spec.get("step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"log must be true or false (got {show(log)})")
    for name, value in (("low", low), ("high", high), ("step", step)):
        if value is None:
            continue
        if not _number(value, whole):
            kind = "a whole number" if whole else "a number"
            raise ConfigError(f"{name} must be {kind} (got {show(value)})")
    if not low < high:
        raise ConfigError(f"low must be < high (got low = {show(low)}, high = {show(high)})")
    if step is not None and step <= 0:
        raise ConfigError(f"step must be > 0 (got {show(step)})")
    if step is not None and log:
        raise ConfigError("step and log cannot be combined")
    if log and low <= 0:
        raise ConfigError(f"a log range needs low > 0 (got {show(low)})")
    if step is not None and not _multiple(high - low, step):
        raise ConfigError(
            f"high - low must be a whole number of steps (got low = {show(low)}, "
            f"high = {show(high)}, step = {show(step)})"
        )
    for name, value in (("low", low), ("high", high)):
        _allowed(adapter, value, f"{name} = {show(value)}", allowed)
    kind = "int" if whole else "float"
    return Param("", kind, float(low), float(high), None if step is None else float(step), log)


def _multiple(span: float, step: float) -> bool:
    n = span / step
    return abs(n - round(n)) < 1e-9 * max(1.0, abs(n))


def _number(value: Any, whole: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, int) if whole else True


def _allowed(adapter: Any, value: Any, what: str, allowed: str) -> None:
    """``value`` passes the setting's own type and bounds, else an error quoting them."""
    try:
        adapter.validate_python(value)
    except ValidationError:
        raise ConfigError(f"{what} is not allowed: the setting must be {allowed}") from None
