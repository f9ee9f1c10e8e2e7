"""What the HTTP routes share: the loaded model, the micro-batcher, recent results and the checks every
upload and request goes through before it joins the line (routes/ use these; app.py wires them).

Batching decision (see batching.py): requests share a batch only when their whole SamplingConfig is
equal (steps, both guidance scales, scheduler, adaptive-guidance steps, dtype AND seed), because the
pipeline takes one SamplingConfig per call. It draws item i's noise from its own generator seeded
`seed + i` (diffusion/sampler.initial_noise), so a result never depends on the other stickers in its
batch, only on its position; the reply's `X-Seed` header is that effective seed: sending it again
alone reproduces the sticker.

Each upload is decoded and prepared (keying, canvas fit: sampling/preprocess.py) in the request's own
thread before it joins the line, so a bad image fails its own request (4xx), never a whole batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from PIL import Image
from starlette.concurrency import run_in_threadpool

from ..checks import check_prompt
from ..config import PATH_FPS, SamplingConfig
from ..sampling.params import (
    SettingError,
    check_loop_budget,
    check_path_settings,
    check_seeds,
    from_flags,
    settings,
    with_loop,
)
from ..sampling.preprocess import Sticker, prepare_sticker
from .batching import MicroBatcher
from .outputs import encode_animation, encode_preset, preset_names
from .settings import ServeSettings
from .uploads import ApiError, decode_upload


@dataclass
class Work:
    """What one queued request asks the worker thread to do."""

    kind: str  # "animate" | "still" (text -> still sticker)
    prompt: str
    params: SamplingConfig
    sticker: Sticker | None = None


def batch_key(kind: str, params: SamplingConfig) -> Hashable:
    """Requests with equal keys may share one batched call (one SamplingConfig per call)."""
    return (kind, dataclasses.astuple(params))


class Lru(OrderedDict):
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


def progress_view(job: Any, position: int) -> dict[str, Any]:
    """What /v1/progress shows; also the snapshot kept once the request is over (no frames held)."""
    elapsed = (job.finished or time.monotonic()) - job.submitted
    return {"state": job.state, "position": position, "step": job.step, "total": job.total,
            "batch_size": job.batch_size, "elapsed_s": round(elapsed, 3)}


def _run_batch(pipeline: Any, still_maker: Any, works: list[Work], progress: Callable[[int, int], None]) -> list:
    """Worker thread: ONE batched call for all works (same kind and params)."""
    params = works[0].params
    prompts = [w.prompt for w in works]
    if works[0].kind == "still":
        return still_maker.stills(prompts, params=params, progress=progress)
    return pipeline.animate_stickers([w.sticker for w in works], prompts, params=params, progress=progress)


class Service:
    """The model, batcher and caches of one app, and the checks its routes share."""

    def __init__(self, settings: ServeSettings, still_maker: Any | None) -> None:
        self.settings, self.still_maker = settings, still_maker
        self.pipeline: Any = None
        self.batcher: MicroBatcher | None = None
        self.results = Lru(settings.result_cache_mb * 2**20)  # result id -> (frames, fps, cond); cost = RGBA bytes
        self.tracked = Lru(settings.progress_entries)  # request id -> Job while it runs, then a snapshot

    # ------------------------------------------------------------------ lifetime
    async def start(self, pipeline_or_factory: Any) -> None:
        """Load the model once (a factory is called in a thread) and start the batcher."""
        self.pipeline = await asyncio.to_thread(_resolve_pipeline, pipeline_or_factory)

        def run_batch(works: list[Work], key: Hashable, progress: Callable[[int, int], None]) -> list:
            return _run_batch(self.pipeline, self.still_maker, works, progress)

        s = self.settings
        self.batcher = MicroBatcher(run_batch, max_batch=s.max_batch, max_wait_ms=s.max_wait_ms,
                                    queue_size=s.queue_size)
        await self.batcher.start()

    async def stop(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()

    @property
    def defaults(self) -> SamplingConfig:
        return self.pipeline.sampling

    @property
    def path(self) -> str:
        """The generation path this server runs (config.PATHS): its pipeline's."""
        return self.pipeline.path

    @property
    def default_fps(self) -> float:
        """The playback rate of a request that names none: the server's, else the path's own."""
        return self.settings.default_fps or PATH_FPS[self.path]

    # ------------------------------------------------------------------ checks, before a request joins the line
    def sampling_params(self, given: dict[str, Any], fps: float | None = None) -> SamplingConfig:
        """The model's recommended settings with the request's (params.from_flags: the one check; 422), what
        this server's path can honour, and the loop's frames at playback rate `fps` (params.with_loop)."""
        check_path_settings(self.path, given)
        params = from_flags(self.defaults, given)
        if params.steps > self.settings.max_steps:  # this server's limit, below the setting's own range
            steps = next(s for s in settings() if s.field == "steps")
            raise SettingError(dataclasses.replace(steps, range=(1, self.settings.max_steps)), params.steps)
        check_seeds(params.seed, self.settings.max_batch, "field 'seed': ")  # a batch's item i uses seed + i
        params = with_loop(params, self.path, fps or self.default_fps)
        self.pipeline.layout(params)  # a conditioning frame outside the loop is a 422 here
        return params

    def check_loop(self, params: SamplingConfig, sticker: Sticker) -> int:
        """The request's conditioning index, once its loop fits the memory budget (frames x the sticker's
        pixels; params.check_loop_budget)."""
        frames, cond = self.pipeline.layout(params)
        check_loop_budget(frames, [sticker.rgba.size])
        return cond

    def clean_prompt(self, prompt: str) -> str:
        """checks.check_prompt with this server's limit; its UserError becomes a 422."""
        return check_prompt(prompt, "field 'prompt'", self.settings.max_prompt_chars)

    def check_preset(self, preset: str | None) -> str | None:
        if not preset:
            return None
        names = preset_names()
        if preset not in names:
            raise ApiError(422, f"field 'preset': '{preset}' is unknown; expected one of {', '.join(names)}")
        return preset

    def prepare(self, data: bytes, content_type: str | None, filename: str | None) -> Sticker:
        """Worker-pool thread: decode + check the upload, then key/fit it exactly as the pipeline does."""
        still = decode_upload(data, content_type, filename, self.settings)
        return prepare_sticker(still, filename or "upload", self.pipeline.resolution)

    # ------------------------------------------------------------------ running and answering
    async def run(self, work: Work, request_id: str | None) -> tuple[Any, Any]:
        """Queue `work` (tracked under `request_id` when given); (result, job)."""
        job = self.batcher.submit(work, batch_key(work.kind, work.params))
        if request_id:
            self.tracked.put(request_id, job)
        try:
            return await self.batcher.result(job, self.settings.request_timeout_s), job
        finally:
            if request_id and self.tracked.get(request_id) is job:  # keep the numbers, not the images
                self.tracked.put(request_id, progress_view(job, -1))

    async def encode(self, frames: list[Image.Image], fmt: str, preset: str | None,
                     rate: float, cond: int) -> tuple[bytes, str, str]:
        """Frames (conditioning index `cond`, shown first by a poster-first preset) -> reply bytes."""
        if preset:
            return await run_in_threadpool(encode_preset, frames, preset, rate, cond)
        return await run_in_threadpool(encode_animation, frames, fmt, rate)


def timing_headers(job: Any) -> dict[str, str]:
    """The reply's batch, effective seed and timing headers."""
    wait = (job.started or job.submitted) - job.submitted
    run_s = (job.finished or time.monotonic()) - (job.started or job.submitted)
    return {"X-Batch-Size": str(job.batch_size), "X-Seed": str(job.payload.params.seed + job.index),
            "X-Queue-Ms": f"{wait * 1000:.0f}", "X-Sampling-Ms": f"{run_s * 1000:.0f}"}


def _resolve_pipeline(obj: Any) -> Any:
    """A pipeline (has .animate) as is; otherwise a zero-argument factory that builds one."""
    return obj if hasattr(obj, "animate") else obj()
