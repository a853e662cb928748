"""Commands registered by name and imported when used: ``fsmtrader backtest`` imports the
backtest's module and what it needs, not the API client, the live session, the control
plane or the downloader that other commands use. ``--help`` lists (and so imports) them all.

A command is ``(module, attribute)``: a function typer turns into a command, or a
``typer.Typer`` group (``control``). It is built by typer exactly as an eager
``app.command(name)(function)`` / ``app.add_typer(group, name=name)`` builds it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import typer
import typer.main

from fsmtrader.cli.options import OnceGroup

if TYPE_CHECKING:
    from typer._click import Command

Where = tuple[str, str]  # (module, attribute)


def build_command(name: str, where: Where, like: typer.Typer) -> Command:
    """The click command typer makes of ``where`` under ``name``, with ``like``'s settings."""
    module, attribute = where
    target = getattr(importlib.import_module(module), attribute)
    one = typer.Typer(
        add_completion=False,
        pretty_exceptions_short=like.pretty_exceptions_short,
        rich_markup_mode=like.rich_markup_mode,
        suggest_commands=like.suggest_commands,
    )
    if isinstance(target, typer.Typer):
        one.add_typer(target, name=name)
    else:
        one.command(name)(target)
    return typer.main.get_group(one).commands[name]


class LazyCommands(MutableMapping[str, "Command"]):
    """A group's commands: the names known at once (in the order ``--help`` lists them),
    each command built on first look-up."""

    def __init__(self, table: Mapping[str, Where], like: typer.Typer) -> None:
        self._table, self._like = dict(table), like
        self._built: dict[str, Command] = {}
        self._names = list(self._table)

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            if name not in self._table:
                raise KeyError(name)
            self._built[name] = build_command(name, self._table[name], self._like)
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command
        if name not in self._names:
            self._names.append(name)

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        self._table.pop(name, None)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


def lazy_app(table: Mapping[str, Where], **settings: Any) -> typer.Typer:
    """A typer application whose commands are ``table``'s, each imported when it runs (or
    when ``--help`` lists it); ``settings`` as for ``typer.Typer``."""

    class _Group(OnceGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.commands = LazyCommands(table, app)

    app = typer.Typer(cls=_Group, callback=_root, **settings)
    return app


def _root() -> None:
    """The group's own callback: nothing to do before a command (typer needs one to build
    a group that has no eagerly registered command)."""
