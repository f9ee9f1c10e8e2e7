"""The web page: GET / and its files under /static."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def router() -> APIRouter:
    """GET / (the page) and /static (its scripts and styles)."""
    api = APIRouter()

    @api.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return api
