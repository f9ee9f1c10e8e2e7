"""The HTTP service: POST an image + prompt, get an animated sticker back; micro-batched sampling.

Endpoints (OpenAPI at /docs):
    POST /v1/animate           multipart image + prompt + options -> sticker bytes (image/webp, ...)
    POST /v1/generate          prompt -> still PNG sticker (only when a text-to-image model is loaded)
    GET  /v1/results/{id}      the last results again in another format (no new sampling)
    GET  /v1/progress/{rid}    state of a request the client tagged with `request_id`
    GET  /v1/info, /v1/stats   model/limits/defaults; batching counters
    GET  /healthz, /           health; the web page (static/)

The parts: service.py (model, batcher, caches, the checks a request passes before it joins the line:
batching and seeds are explained there), form.py (the request forms, derived from the sampling settings),
routes/ (one APIRouter each: animate, health, page), replies.py (every error one JSON line, 4xx for bad
input, never 500).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from . import replies
from .bodylimit import BodyLimitMiddleware
from .routes import animate, health, page
from .service import Service
from .settings import ServeSettings

FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries + text fields on top of the image


def create_app(pipeline_or_factory: Any, settings: ServeSettings | None = None,
               generator: Any | None = None) -> FastAPI:
    """Build the app; a factory is called once at startup (lifespan), so the model loads once.

    `generator`: optional text-to-image pipeline with `.stills(prompts, params, progress) -> [PIL]`;
    without it POST /v1/generate answers 501 and the page hides that control.
    """
    settings = (settings or ServeSettings()).validate()
    service = Service(settings, generator)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start(pipeline_or_factory)  # the one model load
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="Animated stickers", version="0.1.0", lifespan=lifespan,
                  description="Static RGBA sticker + prompt -> looping transparent animated sticker. "
                              "Requests are micro-batched; errors are JSON `{\"error\": ...}`.")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES)
    app.state.settings = settings
    replies.install(app, settings)
    for router in (animate.router(service), health.router(service), page.router()):
        app.include_router(router)
    return app
