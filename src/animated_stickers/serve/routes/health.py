"""GET /healthz (liveness), /v1/info (model, defaults, limits: what the page needs), /v1/stats (batching)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...config import to_dict
from ...export.retime import MAX_FPS, MIN_FPS
from ...sampling.params import MAX_FRAMES, MAX_LOOP_PIXELS, MAX_SEED
from ..outputs import preset_names
from ..service import Service
from ..settings import ALLOWED_IMAGE_FORMATS, OUTPUT_FORMATS


def info(service: Service) -> dict[str, Any]:
    """Defaults for the page's sliders, limits, formats, whether /v1/generate works."""
    s = service.settings
    return {
        "model": service.pipeline.describe(),
        "defaults": {**to_dict(service.defaults), "fps": service.default_fps},
        "limits": {"max_upload_bytes": s.max_upload_bytes, "max_prompt_chars": s.max_prompt_chars,
                   "max_steps": s.max_steps, "max_side": s.max_side, "request_timeout_s": s.request_timeout_s,
                   "fps": [MIN_FPS, MAX_FPS], "frames": [2, MAX_FRAMES], "max_loop_pixels": MAX_LOOP_PIXELS,
                   "max_seed": MAX_SEED - s.max_batch + 1,
                   "image_types": sorted(ALLOWED_IMAGE_FORMATS.values())},
        "formats": list(OUTPUT_FORMATS),
        "presets": preset_names(),
        "generate": service.still_maker is not None,
    }


def router(service: Service) -> APIRouter:
    """The health and information routes over `service`."""
    api = APIRouter()

    @api.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, Any]:
        """`ok` once the model is loaded (the server accepts connections only after that)."""
        b = service.batcher
        return {"status": "ok" if b is not None else "starting", "model_loaded": service.pipeline is not None,
                "waiting": b.stats()["waiting"] if b else 0}

    @api.get("/v1/info", summary="Model, defaults and limits")
    async def get_info() -> dict[str, Any]:
        """What the page needs: defaults for the sliders, limits, formats, whether /v1/generate works."""
        return info(service)

    @api.get("/v1/stats", summary="Batching counters")
    async def stats() -> dict[str, Any]:
        """Batch-size histogram, queue depth, rejections and timeouts since start."""
        return service.batcher.stats()

    return api
