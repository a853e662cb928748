"""How a setting's value is shown in a message: as the user would write it in TOML.

Both the schema's cross-field rules and the error translation quote values; they must
quote them the same way (``50``, not ``50.0``; ``25.10``, not ``Decimal('25.10')``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel

__all__ = ["show"]


def show(value: Any, limit: int = 120) -> str:
    """A value as the user would write it (Decimals without ``Decimal(...)``), truncated."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    elif isinstance(value, BaseModel):
        text = show(value.model_dump(), limit)
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k} = {show(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v, limit) for v in value) + "]"
    elif isinstance(value, PurePath):
        text = repr(str(value))
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
