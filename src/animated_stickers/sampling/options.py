"""CLI options derived from the sampling settings (config.setting metadata, read by params.settings).

`@settings_options()` adds one Typer option per setting to a command, each None unless given, and hands
the command what was given as one dict `settings` {field: value or None}: the command turns it into a
SamplingConfig with params.from_flags (the one check). A new setting on config.SamplingConfig appears on
`stickers animate` (and on the HTTP form, serve/form.py) with no change here.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from ..config import SamplingConfig
from .params import Setting, settings


def flag_decls(s: Setting) -> list[str]:
    """A setting's CLI declarations: its flag (or --name), then its deprecated names."""
    dashed = [s.flag or f"--{s.name.replace('_', '-')}"]
    for old in s.old_names:
        dashed.append(f"--{old.replace('_', '-')}" + (f"/--no-{old.replace('_', '-')}" if s.kind is bool else ""))
    return dashed


def _option(s: Setting) -> inspect.Parameter:
    kind = bool if s.switch is not None else s.kind
    note = f" (deprecated: {', '.join('--' + o.replace('_', '-') for o in s.old_names)})" if s.old_names else ""
    annotation = Annotated[kind | None, typer.Option(*flag_decls(s), help=s.help + note)]
    return inspect.Parameter(s.field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def cli_settings(only: Iterable[str] | None = None, cls: type = SamplingConfig) -> list[Setting]:
    """The settings a command offers: `only` these fields (in that order), else every one marked cli."""
    every = {s.field: s for s in settings(cls)}
    return [every[f] for f in only] if only is not None else [s for s in every.values() if s.cli]


def settings_options(only: Iterable[str] | None = None, cls: type = SamplingConfig) -> Callable:
    """Decorator for a Typer command with a `settings` parameter: see the module docstring."""
    offered = cli_settings(only, cls)

    def wrap(fn: Callable) -> Callable:
        hints = typing.get_type_hints(fn, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(fn).parameters.values() if p.name != "settings"]
        params = own + [_option(s) for s in offered]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            given = {s.field: _value(s, kwargs.pop(s.field, None)) for s in offered}
            return fn(**kwargs, settings=given)

        command.__signature__ = inspect.Signature(params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return wrap


def _value(s: Setting, given: Any) -> Any:
    """A flag's value as the setting's: a switch (--bf16) sets its value when on, else leaves the default."""
    if s.switch is None:
        return given
    return s.switch if given else None
