"""Frame timing: show the model's 8 frames at a chosen fps, or retime them smoothly to more frames.

A sticker loop of n frames at `src_fps` lasts n / src_fps seconds; retiming keeps that length and
changes only how many frames fill it. In-between frames for the pair (n-1, 0) are made like any
other, so the loop stays seamless. Modes:
- "flow" (default): motion-compensated interpolation (inbetween.py): both neighbours are warped along a
  dense optical flow to the in-between time, then blended in premultiplied RGBA; falls back to the
  cross-fade where the flow is unreliable.
- "blend": cross-fade of neighbours in premultiplied RGBA. Fine for small motion; larger motion
  shows as a soft double image.
- "hold": repeat frames (no new content; encoders merge the repeats, so it costs no bytes).
`pingpong=True` plays forwards then backwards (0..n-1..1) first. This is NOT a real loop: the
motion reverses at both ends, which reads as a rewind; it is offered only for clips whose last
frame does not lead back to the first, and it nearly doubles the loop length.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..errors import UserError
from ..rgba import premultiply_image, unpremultiply_image
from .imaging import check_frames
from .inbetween import inbetween, pair_flows

RETIME_MODES = ("flow", "blend", "hold")


# Playback rates every writer can honour: GIF counts delays in 10 ms units (<= 100 fps; its writer allows
# 50), APNG stores a frame's delay as ms / 1000 in 16 bits (<= 65 s), WebP in 24-bit ms.
MIN_FPS, MAX_FPS = 0.1, 100.0


def check_fps(fps: float, what: str = "fps") -> float:
    """Return fps as a float if it is a number within MIN_FPS..MAX_FPS; else raise UserError."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise UserError(f"{what}={fps!r}: expected a positive number of frames per second") from None
    if not np.isfinite(value) or value <= 0:
        raise UserError(f"{what}={fps!r}: expected a positive number of frames per second")
    if value < MIN_FPS:
        raise UserError(f"{what}={fps!r}: too slow: expected {MIN_FPS:g} to {MAX_FPS:g} frames per second")
    if value > MAX_FPS:
        raise UserError(f"{what}={fps!r}: too fast: expected {MIN_FPS:g} to {MAX_FPS:g} frames per second")
    return value


def pingpong_frames(frames: Sequence[Image.Image]) -> list[Image.Image]:
    """Frames 0..n-1 then n-2..1 (no repeated end frames). Not a real loop: the motion reverses."""
    frames = list(frames)
    return frames + frames[-2:0:-1]


def retime(frames: Sequence[Image.Image], src_fps: float, dst_fps: float, mode: str = "flow",
           pingpong: bool = False, cache: dict | None = None) -> tuple[list[Image.Image], float]:
    """Resample a looping clip shown at `src_fps` to about `dst_fps`; returns (frames, exact fps).

    The loop length is kept, so the output has round(n * dst_fps / src_fps) frames and its exact
    rate is that count over the loop length (e.g. 8 frames at 8 fps -> 24 frames at 24 fps).
    `cache` (a dict reused across calls on the same frames) keeps the flow of each pair.
    """
    if mode not in RETIME_MODES:
        raise UserError(f"retime mode {mode!r}: expected one of {', '.join(RETIME_MODES)}")
    src_fps, dst_fps = check_fps(src_fps, "source fps"), check_fps(dst_fps, "target fps")
    seq = check_frames(frames)
    if pingpong:
        seq = pingpong_frames(seq)
    n = len(seq)
    m = max(1, round(n * dst_fps / src_fps))
    if m == n:
        return seq, src_fps
    cache = {} if cache is None else cache

    def pm(i: int) -> np.ndarray:
        if ("pm", i) not in cache:
            cache[("pm", i)] = premultiply_image(seq[i])
        return cache[("pm", i)]

    def flows(i: int, j: int) -> tuple[np.ndarray, ...]:
        if ("flow", i, j) not in cache:
            cache[("flow", i, j)] = pair_flows(pm(i), pm(j))
        return cache[("flow", i, j)]

    out = []
    for k in range(m):
        pos = k * n / m  # position in source frames; the clip wraps around (n -> 0)
        i0 = int(np.floor(pos + 1e-9)) % n
        i1 = (i0 + 1) % n
        w = float(pos - np.floor(pos + 1e-9))
        if mode == "hold" or w < 1e-6:
            out.append(seq[i0])
        elif mode == "blend":
            out.append(unpremultiply_image((1.0 - w) * pm(i0) + w * pm(i1)))
        else:
            out.append(unpremultiply_image(inbetween(pm(i0), pm(i1), flows(i0, i1), w)))
    return out, m * src_fps / n


def durations_ms(n: int, fps: float, unit_ms: int = 1) -> list[int]:
    """Per-frame durations in multiples of `unit_ms` whose running sum tracks k * 1000 / fps exactly.

    E.g. 24 fps in 1 ms units -> 42, 41, 42, ...; in GIF's 10 ms units -> 40, 40, 50, ... (sum exact).
    """
    fps = check_fps(fps)
    stamps = [round(k * 1000.0 / fps / unit_ms) * unit_ms for k in range(n + 1)]
    out = [b - a for a, b in itertools.pairwise(stamps)]
    if min(out) < unit_ms:
        raise UserError(f"fps={fps:g}: too fast for this format (frame durations are multiples of {unit_ms} ms)")
    return out
