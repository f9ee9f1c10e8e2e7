"""User-facing errors: one clear line naming the bad input and what is expected, non-zero exit."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import typer


class UserError(ValueError):
    """Bad input from a user; printed as one line without a traceback."""


def one_line_errors(fn: Callable) -> Callable:
    """Decorator for CLI commands: known error types become `error: ...` on stderr and exit code 2."""
    from .config import ConfigError
    from .data.animation import AnimationReadError
    from .models.checkpoint import ModelLoadError

    known = (UserError, ConfigError, AnimationReadError, ModelLoadError, FileNotFoundError)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except known as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"error: {msg}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper
