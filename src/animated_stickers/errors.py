"""User-facing errors: one clear line naming the bad input and what is expected, non-zero exit.

The bottom layer: it imports nothing of the project, so any module may raise `UserError`. Domain errors
that users should see subclass it (config.ConfigError, data.animation.AnimationReadError,
models.checkpoint.ModelLoadError, io_limits.InputTooLarge, ...); the CLI (`one_line_errors`) and HTTP
(serve/app.py) layers word them.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable

import typer


class UserError(ValueError):
    """Bad input from a user; printed as one line without a traceback."""


def _is_user_error(e: BaseException) -> bool:
    return isinstance(e, (UserError, FileNotFoundError))


def one_line_errors(fn: Callable) -> Callable:
    """Decorator for CLI commands: known error types become `error: ...` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if not _is_user_error(e):
                raise
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"error: {msg}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit(143) the way Ctrl-C raises KeyboardInterrupt, so the same cleanup
    (finally-blocks that delete `.part` temp files and temp folders) runs when a job is killed politely."""
    import signal

    def _raise(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
