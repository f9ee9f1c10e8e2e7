"""The HTTP service: POST an image + prompt, get an animated sticker back; micro-batched sampling.

Endpoints (OpenAPI at /docs):
    POST /v1/animate           multipart image + prompt + options -> sticker bytes (image/webp, ...)
    POST /v1/generate          prompt -> still PNG sticker (only when a text-to-image model is loaded)
    GET  /v1/results/{id}      the last results again in another format (no new sampling)
    GET  /v1/progress/{rid}    state of a request the client tagged with `request_id`
    GET  /v1/info, /v1/stats   model/limits/defaults; batching counters
    GET  /healthz, /           health; the web page (static/)

Batching decision (see batching.py): requests share a batch only when their whole SamplingConfig is
equal (steps, both guidance scales, scheduler, adaptive-guidance steps, dtype AND seed), because the
pipeline takes one SamplingConfig per call. It draws item i's noise from its own generator seeded
`seed + i` (diffusion/sampler.initial_noise), so a result never depends on the other stickers in its
batch, only on its position; the reply's `X-Seed` header is that effective seed: sending it again
alone reproduces the sticker. (Per-request seeds in one mixed batch need `seeds=` in the pipeline.)

Each upload is decoded and prepared (keying, canvas fit: sampling/preprocess.py) in the request's own
thread before it joins the line, so a bad image fails its own request (4xx), never a whole batch.
Every error is JSON `{"error": "<one line>"}`; bad input is 4xx, never 500.
"""


import asyncio
import dataclasses
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..checks import check_prompt
from ..config import SamplingConfig, to_dict
from ..errors import UserError
from ..sampling.pipeline import check_params, clip_layout, with_overrides
from ..sampling.preprocess import Sticker, prepare_sticker
from .batching import MicroBatcher, QueueFull, RequestTimeout, ShuttingDown
from .bodylimit import BodyLimitMiddleware
from .outputs import encode_animation, encode_preset, encode_still, preset_names
from .settings import ALLOWED_IMAGE_FORMATS, OUTPUT_FORMATS, ServeSettings
from .uploads import ApiError, decode_upload

STATIC_DIR = Path(__file__).resolve().parent / "static"
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries + text fields on top of the image
Format = Literal["webp", "gif", "png", "webm"]
Render = Literal["warp", "fuse"]  # config.SamplingConfig.render


@dataclass
class Work:
    """What one queued request asks the worker thread to do."""

    kind: str  # "animate" | "generate"
    prompt: str
    params: SamplingConfig
    sticker: Sticker | None = None


def batch_key(kind: str, params: SamplingConfig) -> Hashable:
    """Requests with equal keys may share one batched call (one SamplingConfig per call)."""
    return (kind, dataclasses.astuple(params))


class _Lru(OrderedDict):
    """A small LRU dict: the oldest entries go when the total `cost` exceeds `budget`."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self._costs: dict[str, int] = {}

    def put(self, key: str, value: Any, cost: int = 1) -> None:
        self[key] = value
        self.move_to_end(key)
        self._costs[key] = cost
        while sum(self._costs.values()) > self.budget and len(self) > 1:
            old, _ = self.popitem(last=False)
            self._costs.pop(old, None)


def _progress_view(job: Any, position: int) -> dict[str, Any]:
    """What /v1/progress shows; also the snapshot kept once the request is over (no frames held)."""
    elapsed = (job.finished or time.monotonic()) - job.submitted
    return {"state": job.state, "position": position, "step": job.step, "total": job.total,
            "batch_size": job.batch_size, "elapsed_s": round(elapsed, 3)}


def _resolve_pipeline(obj: Any) -> Any:
    """A pipeline (has .animate) as is; otherwise a zero-argument factory that builds one."""
    return obj if hasattr(obj, "animate") else obj()


def _run_batch(pipeline: Any, generator: Any, works: list[Work], key: Hashable,
               progress: Callable[[int, int], None]) -> list[Any]:
    """Worker thread: ONE batched call for all works (same kind and params)."""
    params = works[0].params
    prompts = [w.prompt for w in works]
    if works[0].kind == "generate":
        return generator.generate(prompts, params=params, progress=progress)
    return pipeline.animate_stickers([w.sticker for w in works], prompts, params=params, progress=progress)


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form")]
    field = ".".join(loc) or "request"
    return f"field '{field}': {first.get('msg', 'invalid value')}"


def create_app(pipeline_or_factory: Any, settings: ServeSettings | None = None,
               generator: Any | None = None) -> FastAPI:
    """Build the app; a factory is called once at startup (lifespan), so the model loads once.

    `generator`: optional text-to-image pipeline with `.generate(prompts, params, progress) -> [PIL]`;
    without it POST /v1/generate answers 501 and the page hides that control.
    """
    settings = (settings or ServeSettings()).validate()
    state: dict[str, Any] = {}
    results: _Lru = _Lru(settings.result_cache_mb * 2**20)  # result id -> (frames, fps); cost = RGBA bytes
    tracked: _Lru = _Lru(settings.progress_entries)  # request id -> Job while it runs, then a snapshot

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pipeline = await asyncio.to_thread(_resolve_pipeline, pipeline_or_factory)  # the one model load
        state["pipeline"], state["model"] = pipeline, pipeline.model
        state["defaults"] = pipeline.model.sampling

        def run_batch(works: list[Work], key: Hashable, progress: Callable[[int, int], None]) -> list[Any]:
            return _run_batch(pipeline, generator, works, key, progress)

        batcher = MicroBatcher(run_batch, max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms,
                               queue_size=settings.queue_size)
        await batcher.start()
        state["batcher"] = batcher
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="Animated stickers", version="0.1.0", lifespan=lifespan,
                  description="Static RGBA sticker + prompt -> looping transparent animated sticker. "
                              "Requests are micro-batched; errors are JSON `{\"error\": ...}`.")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES)
    app.state.settings = settings

    # ------------------------------------------------------------------ errors: one JSON line each

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        return _error(422, str(exc).splitlines()[0] if str(exc) else "invalid input")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return _error(422, _validation_message(exc), detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        if status == 400 and "exceeded maximum size" in str(exc.detail):
            status = 413  # a form field (e.g. a 2 MB prompt) over the multipart parser's per-part limit
        return _error(status, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(QueueFull)
    async def _full(request: Request, exc: QueueFull) -> JSONResponse:
        return _error(503, f"server busy: the queue of {settings.queue_size} requests is full; "
                           f"retry after {exc.retry_after_s} s", {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(RequestTimeout)
    async def _timeout(request: Request, exc: RequestTimeout) -> JSONResponse:
        return _error(504, f"request timed out: {exc}; try fewer steps or retry later")

    @app.exception_handler(ShuttingDown)
    async def _down(request: Request, exc: ShuttingDown) -> JSONResponse:
        return _error(503, f"unavailable: {exc}", {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return _error(500, f"internal error: {type(exc).__name__}: {first}")

    # ------------------------------------------------------------------ helpers

    def sampling_params(image_guidance: float | None, text_guidance: float | None, steps: int | None,
                        seed: int | None, frames: int | None = None, prompt_motion: bool | None = None,
                        render: str | None = None, room: bool | None = None) -> SamplingConfig:
        """The model's recommended settings with the request's overrides; UserError (422) if out of range."""
        return check_params(with_overrides(state["defaults"], image_guidance=image_guidance,
                                           text_guidance=text_guidance, steps=steps, seed=seed,
                                           num_frames=frames, prompt_motion=prompt_motion, render=render,
                                           room=room))

    def prepare(data: bytes, content_type: str | None, filename: str | None) -> Sticker:
        """Worker-pool thread: decode + check the upload, then key/fit it exactly as the pipeline does."""
        still = decode_upload(data, content_type, filename, settings)
        return prepare_sticker(still, filename or "upload", state["model"].cfg.resolution)

    def clean_prompt(prompt: str) -> str:
        """checks.check_prompt with this server's limit; its UserError becomes a 422 (handler above)."""
        return check_prompt(prompt, "field 'prompt'", settings.max_prompt_chars)

    async def run(work: Work, request_id: str | None) -> tuple[Any, Any]:
        batcher: MicroBatcher = state["batcher"]
        job = batcher.submit(work, batch_key(work.kind, work.params))
        if request_id:
            tracked.put(request_id, job)
        try:
            return await batcher.result(job, settings.request_timeout_s), job
        finally:
            if request_id and tracked.get(request_id) is job:  # keep the numbers, not the images
                tracked.put(request_id, _progress_view(job, -1))

    def check_preset(preset: str | None) -> str | None:
        if not preset:
            return None
        names = preset_names()
        if preset not in names:
            raise ApiError(422, f"field 'preset': '{preset}' is unknown; expected one of {', '.join(names)}")
        return preset

    async def encode(frames: list[Image.Image], fmt: str, preset: str | None,
                     rate: float) -> tuple[bytes, str, str]:
        if preset:
            cond = clip_layout(state["model"].cfg, dataclasses.replace(state["defaults"], num_frames=len(frames)))[1]
            return await run_in_threadpool(encode_preset, frames, preset, rate, cond)
        return await run_in_threadpool(encode_animation, frames, fmt, rate)

    def timing_headers(job: Any) -> dict[str, str]:
        wait = (job.started or job.submitted) - job.submitted
        run_s = (job.finished or time.monotonic()) - (job.started or job.submitted)
        return {"X-Batch-Size": str(job.batch_size), "X-Seed": str(job.payload.params.seed + job.index),
                "X-Queue-Ms": f"{wait * 1000:.0f}", "X-Sampling-Ms": f"{run_s * 1000:.0f}"}

    # ------------------------------------------------------------------ endpoints

    steps_limit = settings.max_steps
    prompt_limit = settings.max_prompt_chars

    @app.post("/v1/animate", response_class=Response, summary="Animate a sticker",
              responses={200: {"content": {m: {} for _, m in OUTPUT_FORMATS.values()},
                               "description": "The animated sticker (8 frames or `frames`, loops forever)."},
                         400: {"description": "Unreadable image"}, 413: {"description": "Upload too big"},
                         415: {"description": "Not PNG/WebP/JPEG/GIF"}, 422: {"description": "Bad field"},
                         503: {"description": "Queue full (Retry-After)"}, 504: {"description": "Timed out"}})
    async def animate(
        image: Annotated[UploadFile, File(description="The sticker: PNG, WebP, JPEG or GIF (first frame).")],
        prompt: Annotated[str, Form(max_length=prompt_limit * 4, description="How it should move.")],
        image_guidance: Annotated[float | None, Form(ge=0, le=30, description="sigma_I")] = None,
        text_guidance: Annotated[float | None, Form(ge=0, le=30, description="sigma_T")] = None,
        steps: Annotated[int | None, Form(ge=1, le=steps_limit, description="Sampling steps")] = None,
        seed: Annotated[int | None, Form(ge=0, le=2**31 - 1, description="Noise seed of its batch")] = None,
        format: Annotated[Format, Form(description="webp, gif, png (APNG) or webm (VP9 + alpha)")] = "webp",
        preset: Annotated[str | None, Form(max_length=64, description="Messenger preset, e.g. telegram, "
                                                                      "whatsapp (overrides format)")] = None,
        fps: Annotated[float | None, Form(gt=0, le=60, description="Playback rate of the frames")] = None,
        frames: Annotated[int | None, Form(ge=2, le=32, description="Frames per loop (default 8; 16 for "
                                                                     "smoother loops)")] = None,
        prompt_motion: Annotated[bool | None, Form(description="Move the sticker exactly as the prompt says "
                                                   "(bouncing, spinning, ...); false: the model's motion only")] = None,
        room: Annotated[bool | None, Form(description="Draw a sticker that fills its canvas smaller (down to "
                                          "0.7) so the prompt's motion keeps its size (default); false: "
                                          "the motion shrinks instead")] = None,
        render: Annotated[Render | None, Form(description="warp: the sticker's own pixels moved along the model's "
                                              "motion (default); fuse: the learned decoder, which may draw "
                                              "new content")] = None,
        request_id: Annotated[str | None, Form(max_length=64, description="For /v1/progress/{id}")] = None,
    ) -> Response:
        """Multipart image + prompt + options -> the animated sticker bytes in `format`."""
        text = clean_prompt(prompt)
        preset = check_preset(preset)
        params = sampling_params(image_guidance, text_guidance, steps, seed, frames, prompt_motion, render, room)
        sticker = await run_in_threadpool(prepare, await image.read(), image.content_type, image.filename)
        frames, job = await run(Work("animate", text, params, sticker), request_id)
        rate = fps or settings.default_fps
        result_id = uuid.uuid4().hex
        results.put(result_id, (frames, rate), cost=sum(4 * f.width * f.height for f in frames))
        body, mime, ext = await encode(frames, format, preset, rate)
        return Response(body, media_type=mime, headers={
            "X-Result-Id": result_id, "Content-Disposition": f'inline; filename="sticker{ext}"',
            **timing_headers(job)})

    @app.get("/v1/results/{result_id}", response_class=Response, summary="A recent result in another format")
    async def result(
        result_id: str,
        format: Annotated[Format, Query()] = "webp",
        preset: Annotated[str | None, Query(max_length=64, description="Overrides format")] = None,
    ) -> Response:
        """Re-encode a recent result (kept in memory, LRU) without sampling again."""
        preset = check_preset(preset)
        if result_id not in results:
            raise ApiError(404, f"result '{result_id}' is unknown or expired; expected an X-Result-Id "
                                "from a recent result")
        frames, rate = results[result_id]
        body, mime, ext = await encode(frames, format, preset, rate)
        name = f"sticker-{preset}{ext}" if preset else f"sticker{ext}"
        return Response(body, media_type=mime,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post("/v1/generate", response_class=Response, summary="Generate a still sticker from text",
              responses={200: {"content": {"image/png": {}}}, 501: {"description": "No text-to-image model"}})
    async def generate(
        prompt: Annotated[str, Form(max_length=prompt_limit * 4)],
        text_guidance: Annotated[float | None, Form(ge=0, le=30)] = None,
        steps: Annotated[int | None, Form(ge=1, le=steps_limit)] = None,
        seed: Annotated[int | None, Form(ge=0, le=2**31 - 1)] = None,
        request_id: Annotated[str | None, Form(max_length=64)] = None,
    ) -> Response:
        """Prompt -> one RGBA PNG sticker (to animate next)."""
        if generator is None:
            raise ApiError(501, "no text-to-image model is loaded; upload a sticker image instead")
        text = clean_prompt(prompt)
        params = sampling_params(None, text_guidance, steps, seed)
        still, job = await run(Work("generate", text, params), request_id)
        return Response(await run_in_threadpool(encode_still, still), media_type="image/png",
                        headers=timing_headers(job))

    @app.get("/v1/progress/{request_id}", summary="Progress of a tagged request")
    async def progress(request_id: str) -> dict[str, Any]:
        """queued (position = jobs ahead) | running (step/total) | done | failed | abandoned."""
        entry = tracked.get(request_id)
        if entry is None:
            raise ApiError(404, f"request_id '{request_id}' is unknown; send it as a request_id field first")
        return entry if isinstance(entry, dict) else _progress_view(entry, state["batcher"].position(entry))

    @app.get("/v1/stats", summary="Batching counters")
    async def stats() -> dict[str, Any]:
        """Batch-size histogram, queue depth, rejections and timeouts since start."""
        return state["batcher"].stats()

    @app.get("/v1/info", summary="Model, defaults and limits")
    async def info() -> dict[str, Any]:
        """What the page needs: defaults for the sliders, limits, formats, whether /v1/generate works."""
        model = state["model"]
        return {
            "model": {"name": model.cfg.name, "resolution": model.cfg.resolution,
                      "num_frames": model.cfg.num_frames, "stage": model.stage},
            "defaults": {**to_dict(state["defaults"]), "fps": settings.default_fps},
            "limits": {"max_upload_bytes": settings.max_upload_bytes,
                       "max_prompt_chars": settings.max_prompt_chars,
                       "max_steps": settings.max_steps, "max_side": settings.max_side,
                       "request_timeout_s": settings.request_timeout_s,
                       "image_types": sorted(ALLOWED_IMAGE_FORMATS.values())},
            "formats": list(OUTPUT_FORMATS),
            "presets": preset_names(),
            "generate": generator is not None,
        }

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, Any]:
        """`ok` once the model is loaded (the server accepts connections only after that)."""
        b = state.get("batcher")
        return {"status": "ok" if b is not None else "starting", "model_loaded": "pipeline" in state,
                "waiting": b.stats()["waiting"] if b else 0}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
