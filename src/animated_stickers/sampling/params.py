"""Sampling settings: the checks and overrides every pipeline shares (torch-free: the ONNX path uses it)."""

from __future__ import annotations

import dataclasses

from ..checks import check_prompt
from ..config import SCHEDULERS, SamplingConfig, cond_index_at
from ..errors import UserError

DTYPE_NAMES = ("float32", "bfloat16")
RENDERS = ("warp", "fuse")  # config.SamplingConfig.render


def check_params(params: SamplingConfig) -> SamplingConfig:
    """UserError for sampling settings out of range; returns params."""
    if params.scheduler not in SCHEDULERS:
        raise UserError(f"scheduler '{params.scheduler}': expected one of {', '.join(SCHEDULERS)}")
    if not 1 <= params.steps <= 1000:
        raise UserError(f"steps={params.steps}: expected 1 to 1000")
    if params.guided_steps < 0:
        raise UserError(f"guided_steps={params.guided_steps}: expected 0 or more")
    if not 0 <= params.seed <= MAX_SEED:
        raise UserError(f"seed={params.seed}: expected 0 to {MAX_SEED} (2**63 - 1)")
    if params.dtype not in DTYPE_NAMES:
        raise UserError(f"dtype '{params.dtype}': expected one of {', '.join(DTYPE_NAMES)}")
    for name in ("image_guidance", "text_guidance"):
        if not 0 <= getattr(params, name) <= 50:
            raise UserError(f"{name}={getattr(params, name)}: expected 0 to 50")
    if params.render not in RENDERS:
        raise UserError(f"render '{params.render}': expected one of {', '.join(RENDERS)}")
    if not 1 <= params.harmonics <= MAX_FRAMES // 2:
        raise UserError(f"harmonics={params.harmonics}: expected 1 to {MAX_FRAMES // 2}")
    if params.num_frames is not None and not 2 <= params.num_frames <= MAX_FRAMES:
        raise UserError(f"frames={params.num_frames}: expected 2 to {MAX_FRAMES}")
    if params.cond_frame is not None and params.num_frames is not None and \
            not 0 <= params.cond_frame < params.num_frames:
        raise UserError(f"cond_frame={params.cond_frame}: expected 0 to {params.num_frames - 1} "
                        f"for {params.num_frames} frames")
    return params


MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds; sticker i of a call uses seed + i
MAX_FRAMES = 32  # longest loop a call may ask for (memory grows linearly with frames)


def with_overrides(params: SamplingConfig, **changes) -> SamplingConfig:
    """A copy of `params` with the non-None `changes` applied; guided_steps capped at steps."""
    p = dataclasses.replace(params, **{k: v for k, v in changes.items() if v is not None})
    return dataclasses.replace(p, guided_steps=min(p.guided_steps, p.steps))


def clip_layout(params: SamplingConfig, frames: int, cond: int) -> tuple[int, int]:
    """(frames, conditioning index) of a call: the params' choice, else the defaults of a model trained on
    `frames` with frame `cond` (config.cond_index_at)."""
    t = params.num_frames or frames
    c = params.cond_frame if params.cond_frame is not None else cond_index_at(frames, cond, t)
    if not 0 <= c < t:
        raise UserError(f"cond_frame={c}: expected 0 to {t - 1} for {t} frames")
    return t, c


def prompts_per_sticker(prompts: list[str], stickers: int) -> list[str]:
    """One checked prompt per sticker of a call (one prompt for all is repeated); UserError otherwise."""
    if not stickers:
        raise UserError("no images given: expected at least one sticker")
    if len(prompts) == 1 and stickers > 1:
        prompts = prompts * stickers
    if len(prompts) != stickers:
        raise UserError(f"{len(prompts)} prompts for {stickers} images: expected one each (or one for all)")
    return [check_prompt(p) for p in prompts]
