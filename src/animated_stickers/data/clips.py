"""Which frames make a training clip (paper 3.1.1) and which frame conditions it (paper 3.1.2).

A clip is `num_frames` (8) frames taken every `spacing` source frames, where
    spacing = min(round(video_fps / fps), floor(n_frames / num_frames))     (paper 3.1.1)
so a clip covers about `num_frames / fps` seconds, but never needs more frames than the video has.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..config import cond_index

CondMode = Literal["middle", "first", "last", "random"]
COND_MODES: tuple[str, ...] = ("middle", "first", "last", "random")
NUM_FRAMES = 8


def constant_rate_steps(durations_ms: Sequence[int], default_fps: float = 24.0) -> tuple[float, list[int]]:
    """The nominal rate (1000 / median frame duration) and the source frame shown at each step of that rate.

    Animations may hold a frame longer (encoders merge identical frames; GIFs vary their delays), so clips
    are planned on a constant-rate grid of steps and each step maps to the frame on screen at its middle.
    Uniform durations give the identity mapping. Non-positive durations count as the median (or 1/default_fps).
    """
    positive = sorted(d for d in durations_ms if d > 0)
    step_ms = positive[len(positive) // 2] if positive else 1000.0 / default_fps
    durations = [d if d > 0 else step_ms for d in durations_ms]
    ends = list(itertools.accumulate(durations))
    n_steps = max(1, round(ends[-1] / step_ms)) if ends else 1
    last = max(0, len(durations) - 1)
    steps = [min(bisect.bisect_right(ends, (j + 0.5) * step_ms), last) for j in range(n_steps)]
    return 1000.0 / step_ms, steps


def frame_spacing(video_fps: float, n_frames: int, fps: float, num_frames: int = NUM_FRAMES) -> int:
    """Source frames between clip frames: min(round(video_fps / fps), floor(n_frames / num_frames)), >= 1."""
    if video_fps <= 0 or fps <= 0:
        raise ValueError(f"fps must be positive (video_fps={video_fps}, fps={fps})")
    return max(1, min(round(video_fps / fps), n_frames // num_frames))


@dataclass(frozen=True)
class ClipPlan:
    """Source frame indices of one clip, the spacing used and the clip's effective frame rate."""

    indices: tuple[int, ...]
    spacing: int
    fps: float  # video_fps / spacing: the rate the clip plays at to keep the original speed


def clip_indices(n_frames: int, spacing: int, start: int = 0, num_frames: int = NUM_FRAMES,
                 loop: bool = False) -> list[int]:
    """Indices start, start+spacing, ...; wrap around when `loop` (seamless loops) else clamp to the end."""
    if n_frames <= 0:
        raise ValueError("a clip needs at least one source frame")
    raw = [start + i * spacing for i in range(num_frames)]
    return [r % n_frames for r in raw] if loop else [min(r, n_frames - 1) for r in raw]


def max_start(n_frames: int, spacing: int, num_frames: int = NUM_FRAMES, loop: bool = False) -> int:
    """The largest start offset whose clip stays inside the video (any frame when it loops)."""
    return n_frames - 1 if loop else max(0, n_frames - 1 - (num_frames - 1) * spacing)


def plan_clip(n_frames: int, video_fps: float, fps: float, rng: random.Random | None = None,
              num_frames: int = NUM_FRAMES, loop: bool = False, start: int | None = None) -> ClipPlan:
    """Plan a clip at sampling rate `fps`: spacing rule, then a start offset (random with `rng`, else 0)."""
    spacing = frame_spacing(video_fps, n_frames, fps, num_frames)
    if start is None:
        start = rng.randint(0, max_start(n_frames, spacing, num_frames, loop)) if rng else 0
    return ClipPlan(tuple(clip_indices(n_frames, spacing, start, num_frames, loop)), spacing,
                    video_fps / spacing)


def cond_frame_index(mode: CondMode = "middle", num_frames: int = NUM_FRAMES,
                     rng: random.Random | None = None) -> int:
    """Index of the conditioning frame: middle (config.cond_index: 3 of 8, the paper's choice), first, last
    or random."""
    if mode == "middle":
        return cond_index(num_frames)
    if mode == "first":
        return 0
    if mode == "last":
        return num_frames - 1
    if mode == "random":
        return (rng or random).randrange(num_frames)
    raise ValueError(f"conditioning frame mode '{mode}': expected one of {', '.join(COND_MODES)}")


def take_frames(frames: np.ndarray, plan: ClipPlan) -> np.ndarray:
    """The clip's frames (num_frames, H, W, C) from all frames (T, H, W, C)."""
    return frames[list(plan.indices)]


def clip_duration_s(plan: ClipPlan) -> float:
    """Seconds covered by the clip at its effective rate."""
    return len(plan.indices) / plan.fps if plan.fps > 0 else math.inf


# ---------------------------------------------------------------- whole loops (seamless stickers)

LOOP_TOLERANCE = 2.0  # a seam up to 2x the median step counts as smooth (the looping criterion's rule)


def _loop_signal(frames: np.ndarray, size: int = 32) -> np.ndarray:
    """(T, H, W, 4) uint8 -> (T, D) float: premultiplied RGBA at size x size, for comparing frames."""
    from ..rgba import premultiply  # noqa: PLC0415 (rgba imports Pillow; clips stays light)

    t, h, w, _ = frames.shape
    sy, sx = max(1, h // size), max(1, w // size)
    small = frames[:, ::sy, ::sx].astype(np.float32) / 255.0  # strided: cheap, enough to compare frames
    return premultiply(small).reshape(t, -1)


def loop_period(frames: np.ndarray, min_period: int = NUM_FRAMES) -> int | None:
    """Length in frames of one loop of an animation, or None when it does not loop seamlessly.

    A shorter repeat wins (frames p.. equal frames 0.. within half a typical step, seen at least
    twice); otherwise the whole file is one loop when its seam (last -> first) is no larger than
    LOOP_TOLERANCE typical steps.
    """
    n = len(frames)
    if n < min_period:
        return None
    x = _loop_signal(frames)
    typical = max(float(np.median(np.abs(np.diff(x, axis=0)).mean(1))), 1e-4)
    for p in range(min_period, n // 2 + 1):
        if float(np.abs(x[p:] - x[:-p]).mean()) <= 0.5 * typical:
            return p
    seam = float(np.abs(x[-1] - x[0]).mean())
    return n if seam <= LOOP_TOLERANCE * typical else None


def plan_loop_clip(n_frames: int, period: int, video_fps: float, rng: random.Random | None = None,
                   num_frames: int = NUM_FRAMES, start: int | None = None) -> ClipPlan:
    """`num_frames` frames evenly over one loop of `period` frames, from a random phase (any roll of a
    loop is a loop). The clip plays at num_frames / (period / video_fps) fps to keep the loop's speed."""
    if period < 1 or period > n_frames:
        raise ValueError(f"loop period {period}: expected 1 to {n_frames}")
    if start is None:
        start = rng.randrange(period) if rng else 0
    idx = tuple((start + round(i * period / num_frames)) % period for i in range(num_frames))
    return ClipPlan(idx, max(1, round(period / num_frames)), video_fps * num_frames / period)
