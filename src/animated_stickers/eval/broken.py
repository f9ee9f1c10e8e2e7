"""Deliberately broken versions of a real clip, one per failure the automatic measures should catch.

Each breaker takes straight-RGBA float frames (T, H, W, 4) in [0, 1], the conditioning index and a
seeded generator, and returns broken frames of the same shape. The conditioning image stays the real
middle frame, so only the targeted property changes (as far as that is possible).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..rgba import premultiply
from .imageops import blur, dilate, erode, shift

Breaker = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def static_copy(frames: np.ndarray, cond: int, rng: np.random.Generator) -> np.ndarray:
    """No motion: the conditioning frame repeated."""
    return np.repeat(frames[cond : cond + 1], frames.shape[0], axis=0)


def frame_noise(frames: np.ndarray, cond: int, rng: np.random.Generator, sigma: float = 0.04) -> np.ndarray:
    """Independent colour noise (std 0.04, ~10/255: visible grain) in every frame, alpha untouched."""
    out = frames.copy()
    out[..., :3] = np.clip(out[..., :3] + rng.normal(0, sigma, out[..., :3].shape), 0, 1)
    return out


def _bilinear(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample a (H, W, C) image at float coordinates (H, W) with bilinear weights, zero outside."""
    h, w = frame.shape[:2]
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
    out = np.zeros(ys.shape + frame.shape[2:], np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            ok = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w))[..., None]
            out += wy * wx * ok * frame[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
    return out


def random_warps(
    frames: np.ndarray, cond: int, rng: np.random.Generator, amplitude: float = 0.07
) -> np.ndarray:
    """Morphing: an independent smooth random displacement field per frame (~7% of the canvas), the
    conditioning frame kept. Warped premultiplied so edges stay clean."""
    t, h, w, _ = frames.shape
    p = premultiply(frames)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = frames.copy()
    for i in range(t):
        if i == cond:
            continue
        coarse = rng.normal(0, 1, (2, 4, 4)).astype(np.float32)
        field = np.stack([_upsample(c, h, w) for c in coarse]) * amplitude * max(h, w)
        warped = _bilinear(p[i], gy + field[0], gx + field[1])
        out[i] = _unpremul(warped)
    return out


def _upsample(c: np.ndarray, h: int, w: int) -> np.ndarray:
    ys = np.linspace(0, c.shape[0] - 1, h)
    xs = np.linspace(0, c.shape[1] - 1, w)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    return _bilinear(c[..., None], gy, gx)[..., 0]


def _unpremul(p: np.ndarray) -> np.ndarray:
    a = p[..., 3:4]
    rgb = np.where(a > 1e-6, p[..., :3] / np.maximum(a, 1e-6), 0)
    return np.clip(np.concatenate([rgb, a], -1), 0, 1).astype(np.float32)


def _unit(rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([np.sin(angle), np.cos(angle)])


def cut_loop(
    frames: np.ndarray, cond: int, rng: np.random.Generator, px_per_frame: float = 0.02
) -> np.ndarray:
    """A loop that does not close: a steady drift (2% of the canvas per frame) on top of the real motion,
    so every ordinary step is small and last -> first jumps seven steps back."""
    t, h = frames.shape[:2]
    d = _unit(rng) * px_per_frame * h
    return np.stack([shift(frames[i], *np.round(d * (i - cond)).astype(int), axes=(0, 1)) for i in range(t)])


def offset_out(
    frames: np.ndarray, cond: int, rng: np.random.Generator, overshoot: float = 0.08
) -> np.ndarray:
    """Clipping: the body swings out over the nearest canvas edge and back (a smooth loop), so part of
    it is cut off in the middle frames of the swing; the conditioning frame stays in place."""
    t, h, w, _ = frames.shape
    m = frames[cond, ..., 3] > 0.5
    if not m.any():
        return frames.copy()
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    gaps = {(-1, 0): rows[0], (1, 0): h - 1 - rows[-1], (0, -1): cols[0], (0, 1): w - 1 - cols[-1]}
    direction, gap = min(gaps.items(), key=lambda kv: kv[1])
    reach = gap + overshoot * max(h, w)
    out = []
    for i in range(t):
        k = np.sin(np.pi * (i - cond) / t) ** 2  # 0 at the conditioning frame, 1 half a loop away
        dy, dx = (np.array(direction) * reach * k).round().astype(int)
        out.append(shift(frames[i], int(dy), int(dx), axes=(0, 1)))
    return np.stack(out)


def alpha_speckle(
    frames: np.ndarray, cond: int, rng: np.random.Generator, density: float = 0.004, haze: float = 0.03
) -> np.ndarray:
    """A dirty background: random specks (0.4% of pixels) and a faint alpha haze, new in every frame."""
    out = frames.copy()
    a = out[..., 3]
    speck = rng.random(a.shape) < density
    out[..., 3] = np.clip(
        np.maximum(a, speck * rng.uniform(0.3, 1.0, a.shape) + haze * rng.random(a.shape)), 0, 1
    )
    new = (a < 0.02)[..., None]
    out[..., :3] = np.where(new, rng.random(out[..., :3].shape), out[..., :3])
    return out.astype(np.float32)


def colour_blobs(
    frames: np.ndarray, cond: int, rng: np.random.Generator, count: int = 6, radius: float = 0.025
) -> np.ndarray:
    """Smeared colour: `count` small opaque discs (radius 2.5% of the canvas) of colours the sticker does
    not have, new in every frame but the conditioning one, each centred on the body's edge band."""
    t, h, w, _ = frames.shape
    out = frames.copy()
    gy, gx = np.mgrid[:h, :w]
    r = max(1.5, radius * max(h, w))
    for i in range(t):
        if i == cond:
            continue
        body = frames[i, ..., 3] > 0.5
        band = np.flatnonzero(dilate(body, 2) & ~erode(body, 2))
        if band.size == 0:
            continue
        for p in rng.choice(band, size=min(count, band.size), replace=False):
            cy, cx = divmod(int(p), w)
            disc = (gy - cy) ** 2 + (gx - cx) ** 2 <= r * r
            out[i][disc] = np.concatenate([rng.random(3), [1.0]])
    return out.astype(np.float32)


def add_white_outline(
    frames: np.ndarray, width: float = 0.025, masks: np.ndarray | None = None
) -> np.ndarray:
    """The classic sticker look: each frame over a white silhouette grown by `width` (of the canvas) from
    `masks` (default: the frame's own alpha, so the outline moves with the body)."""
    h = frames.shape[1]
    masks = frames[..., 3] > 0.5 if masks is None else masks
    r = max(1, round(width * h))
    white_a = blur(dilate(masks, r).astype(np.float32), 1, (-2, -1))[..., None]  # (T, H, W, 1) soft edge
    p = premultiply(frames)
    a = p[..., 3:4]
    out_a = a + (1 - a) * white_a
    out_rgb = p[..., :3] + (1 - a) * white_a  # white premultiplied = its alpha
    rgb = np.where(out_a > 1e-6, out_rgb / np.maximum(out_a, 1e-6), 0)
    return np.clip(np.concatenate([rgb, out_a], -1), 0, 1).astype(np.float32)


def outline_lag(frames: np.ndarray, cond: int, rng: np.random.Generator) -> np.ndarray:
    """The white outline stays where the input's was while the body moves (applied to un-outlined frames)."""
    fixed = np.repeat((frames[cond, ..., 3] > 0.5)[None], frames.shape[0], axis=0)
    return add_white_outline(frames, masks=fixed)


def detached_outline(
    frames: np.ndarray, cond: int, rng: np.random.Generator, amplitude: float = 0.035
) -> np.ndarray:
    """The drawing (outline included) slides under the silhouette: the colour layer of the outlined clip
    oscillates by ~3.5% of the canvas while alpha keeps the real motion."""
    frames = add_white_outline(frames)
    t, h = frames.shape[:2]
    d = _unit(rng) * amplitude * h
    p = premultiply(frames)
    # Extend colour beyond the silhouette (a blurred fill) so the slid layer has no black seam.
    fill = blur(p, 6, (1, 2))
    colour = np.where(
        frames[..., 3:4] > 0.05, frames[..., :3], fill[..., :3] / np.maximum(fill[..., 3:4], 1e-3)
    )
    out = frames.copy()
    for i in range(t):
        dy, dx = np.round(d * np.sin(2 * np.pi * (i - cond) / t)).astype(int)
        out[i, ..., :3] = np.roll(colour[i], (int(dy), int(dx)), axis=(0, 1))
    return np.clip(out, 0, 1).astype(np.float32)


BREAKERS: dict[str, Breaker] = {
    "static": static_copy,
    "noise": frame_noise,
    "warp": random_warps,
    "cut_loop": cut_loop,
    "offset": offset_out,
    "alpha_noise": alpha_speckle,
    "outline_lag": outline_lag,
    "detached_outline": detached_outline,
    "colour_blobs": colour_blobs,
}
# Breakers whose output carries a white outline: judged against the outlined conditioning image.
OUTLINED = {"outline_lag", "detached_outline"}

# Which criteria each broken kind is meant to fail ("wrong_input" = another emoji's real animation,
# built in calibrate.py because it needs a second clip).
TARGETS: dict[str, tuple[str, ...]] = {
    "static": ("existence",),
    "noise": ("distortions",),
    "warp": ("consistency", "motion_curves"),
    "cut_loop": ("looping",),
    "offset": ("clipping",),
    "alpha_noise": ("background",),
    "outline_lag": ("outline",),
    "detached_outline": ("outline",),
    "colour_blobs": ("blobs",),
    "wrong_input": ("identity",),
}
