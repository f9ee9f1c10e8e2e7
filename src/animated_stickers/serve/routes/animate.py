"""POST /v1/animate, GET /v1/results/{id}, POST /v1/generate (text -> still), GET /v1/progress/{rid}."""

# No `from __future__ import annotations`: FastAPI must see the forms built in `router` as classes.

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ...export.formats import check_format_fps, format_of
from ...export.retime import MAX_FPS, MIN_FPS
from ..form import given_settings, settings_form
from ..outputs import encode_still
from ..service import Service, Work, progress_view, timing_headers
from ..settings import OUTPUT_FORMATS
from ..uploads import ApiError

Format = Literal["webp", "gif", "png", "webm"]
STILL_SETTINGS = ("steps", "text_guidance", "seed")  # what a text -> still request may set
ANIMATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {m: {} for _, m in OUTPUT_FORMATS.values()},
          "description": "The animated sticker (motion path: fps x seconds frames, 48 by default; video path: "
                         "8 frames or `frames`; loops forever)."},
    400: {"description": "Unreadable image"}, 413: {"description": "Upload too big"},
    415: {"description": "Not PNG/WebP/JPEG/GIF"}, 422: {"description": "Bad field"},
    503: {"description": "Queue full (Retry-After)"}, 504: {"description": "Timed out"}}


def _forms(prompt_chars: int) -> tuple[type, type]:
    """The animate and still forms: the request's own fields, then the settings (form.settings_form)."""
    prompt = (str, Field(max_length=prompt_chars * 4, description="How it should move."))
    request_id = (str | None, Field(None, max_length=64, description="For /v1/progress/{id}"))
    animate = settings_form("AnimateForm", {
        "prompt": prompt,
        "format": (Format, Field("webp", description="webp, gif, png (APNG) or webm (VP9 + alpha)")),
        "preset": (str | None, Field(None, max_length=64, description="Messenger preset, e.g. telegram, whatsapp "
                                                                      "(overrides format)")),
        "fps": (float | None, Field(None, ge=MIN_FPS, le=MAX_FPS, description="Playback rate of the frames "
                                                                              "(GIF: at most 50)")),
        "request_id": request_id})
    still = settings_form("StillForm", {"prompt": prompt, "request_id": request_id}, only=STILL_SETTINGS)
    return animate, still


def router(service: Service) -> APIRouter:
    """The sampling routes over `service`."""
    api = APIRouter()
    animate_form, still_form = _forms(service.settings.max_prompt_chars)
    _animate(api, service, animate_form)
    _results(api, service)
    _still(api, service, still_form)
    _progress(api, service)
    return api


def _animate(api: APIRouter, service: Service, AnimateForm: type) -> None:
    @api.post("/v1/animate", response_class=Response, summary="Animate a sticker", responses=ANIMATE_RESPONSES)
    async def animate(
        image: Annotated[UploadFile, File(description="The sticker: PNG, WebP, JPEG or GIF (first frame).")],
        form: Annotated[AnimateForm, Form()],
    ) -> Response:
        """Multipart image + prompt + options -> the animated sticker bytes in `format`."""
        text = service.clean_prompt(form.prompt)
        preset = service.check_preset(form.preset)
        rate = form.fps or service.default_fps
        params = service.sampling_params(given_settings(form), rate)
        if not preset:  # what the format can play, before any sampling (presets retime to their own rate)
            check_format_fps(format_of("sticker" + OUTPUT_FORMATS[form.format][0]), rate)
        sticker = await run_in_threadpool(service.prepare, await image.read(), image.content_type, image.filename)
        cond = service.check_loop(params, sticker)
        frames, job = await service.run(Work("animate", text, params, sticker), form.request_id)
        result_id = uuid.uuid4().hex
        service.results.put(result_id, (frames, rate, cond), cost=sum(4 * f.width * f.height for f in frames))
        body, mime, ext = await service.encode(frames, form.format, preset, rate, cond)
        return Response(body, media_type=mime, headers={
            "X-Result-Id": result_id, "Content-Disposition": f'inline; filename="sticker{ext}"',
            **timing_headers(job)})


def _results(api: APIRouter, service: Service) -> None:
    @api.get("/v1/results/{result_id}", response_class=Response, summary="A recent result in another format")
    async def result(
        result_id: str,
        format: Annotated[Format, Query()] = "webp",
        preset: Annotated[str | None, Query(max_length=64, description="Overrides format")] = None,
    ) -> Response:
        """Re-encode a recent result (kept in memory, LRU) without sampling again."""
        preset = service.check_preset(preset)
        if result_id not in service.results:
            raise ApiError(404, f"result '{result_id}' is unknown or expired; expected an X-Result-Id "
                                "from a recent result")
        frames, rate, cond = service.results[result_id]
        body, mime, ext = await service.encode(frames, format, preset, rate, cond)
        name = f"sticker-{preset}{ext}" if preset else f"sticker{ext}"
        return Response(body, media_type=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _still(api: APIRouter, service: Service, StillForm: type) -> None:
    @api.post("/v1/generate", response_class=Response, summary="Generate a still sticker from text",
              responses={200: {"content": {"image/png": {}}}, 501: {"description": "No text-to-image model"}})
    async def still(form: Annotated[StillForm, Form()]) -> Response:
        """Prompt -> one RGBA PNG sticker (to animate next)."""
        if service.still_maker is None:
            raise ApiError(501, "no text-to-image model is loaded; upload a sticker image instead")
        text = service.clean_prompt(form.prompt)
        params = service.sampling_params(given_settings(form, STILL_SETTINGS))
        image, job = await service.run(Work("still", text, params), form.request_id)
        return Response(await run_in_threadpool(encode_still, image), media_type="image/png",
                        headers=timing_headers(job))


def _progress(api: APIRouter, service: Service) -> None:
    @api.get("/v1/progress/{request_id}", summary="Progress of a tagged request")
    async def progress(request_id: str) -> dict[str, Any]:
        """queued (position = jobs ahead) | running (step/total) | done | failed | abandoned."""
        entry = service.tracked.get(request_id)
        if entry is None:
            raise ApiError(404, f"request_id '{request_id}' is unknown; send it as a request_id field first")
        return entry if isinstance(entry, dict) else progress_view(entry, service.batcher.position(entry))
