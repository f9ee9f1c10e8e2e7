"""Every error the HTTP service answers is JSON `{"error": "<one line>"}`: bad input is 4xx, never 500.

The domain raises typed errors (UserError, SettingError, the batcher's); `install` words them here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import UserError
from ..sampling.params import SettingError
from .batching import QueueFull, RequestTimeout, ShuttingDown
from .settings import ServeSettings
from .uploads import ApiError


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """pydantic's first complaint as `field 'name': what`."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form")]
    field = ".".join(loc) or "request"
    return f"field '{field}': {first.get('msg', 'invalid value')}"


def user_message(exc: UserError) -> str:
    """A domain error's one line; a sampling setting's names its form field, in the CLI's own words."""
    line = str(exc).splitlines()[0] if str(exc) else "invalid input"
    return f"field '{exc.name}': {line}" if isinstance(exc, SettingError) else line


def install(app: FastAPI, settings: ServeSettings) -> None:
    """One JSON line per error type."""
    handlers = {
        ApiError: lambda exc: error(exc.status, exc.message, exc.headers),
        UserError: lambda exc: error(422, user_message(exc)),
        RequestValidationError: lambda exc: error(422, validation_message(exc), detail=[
            {"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]),
        StarletteHTTPException: _http,
        QueueFull: lambda exc: error(503, f"server busy: the queue of {settings.queue_size} requests is full; "
                                          f"retry after {exc.retry_after_s} s",
                                     {"Retry-After": str(exc.retry_after_s)}),
        RequestTimeout: lambda exc: error(504, f"request timed out: {exc}; try fewer steps or retry later"),
        ShuttingDown: lambda exc: error(503, f"unavailable: {exc}", {"Retry-After": "5"}),
        Exception: _internal,
    }
    for kind, word in handlers.items():
        app.add_exception_handler(kind, _async(word))


def _async(word):
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return word(exc)

    return handler


def _http(exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    if status == 400 and "exceeded maximum size" in str(exc.detail):
        status = 413  # a form field (e.g. a 2 MB prompt) over the multipart parser's per-part limit
    return error(status, str(exc.detail), getattr(exc, "headers", None))


def _internal(exc: Exception) -> JSONResponse:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return error(500, f"internal error: {type(exc).__name__}: {first}")
