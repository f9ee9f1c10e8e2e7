"""Procedural animations of static stickers: weakly in-domain motion (paper 2.2 "short animations" stage).

Each motion is a looping family of image warps (squash-and-stretch, bounce, wobble, spin, pulse, shake,
float, wave, and partial warps that bend only part of the sticker) with a caption naming the motion, so
the model sees sticker-style motion on every style of still. All motions are periodic in the phase
phi = 2*pi*t/T with integer harmonics, so frame T equals frame 0 and the loop is seamless.

Warping is done by inverse mapping with bilinear sampling on premultiplied RGBA (no dark fringes).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FPS = 24.0
NUM_FRAMES = 48  # a 2 s loop at 24 fps: long enough for 8-frame clips at 4 fps (spacing 6)
FILL = 0.72  # the sticker is shrunk to this share of the canvas, leaving room to move


@dataclass(frozen=True)
class Motion:
    """A named motion: its caption phrase and the per-frame inverse map it applies."""

    name: str
    phrase: str
    kind: str  # 'affine' or 'warp' (partial / non-rigid)


MOTIONS: dict[str, Motion] = {m.name: m for m in [
    Motion("squash", "squashing and stretching", "affine"),
    Motion("bounce", "bouncing up and down", "affine"),
    Motion("wobble", "wobbling from side to side", "affine"),
    Motion("spin", "spinning around", "affine"),
    Motion("pulse", "pulsing like a heartbeat", "affine"),
    Motion("shake", "shaking", "affine"),
    Motion("float", "floating gently up and down", "affine"),
    Motion("wave", "waving like a flag in the wind", "warp"),
    Motion("sway", "swaying its top from side to side", "warp"),
    Motion("jelly", "jiggling like jelly", "warp"),
    Motion("nod", "nodding its top forward", "warp"),
]}


def _premultiply(rgba: np.ndarray) -> np.ndarray:
    x = rgba.astype(np.float32) / 255.0
    x[..., :3] *= x[..., 3:]
    return x


def _unpremultiply(x: np.ndarray) -> np.ndarray:
    a = x[..., 3:]
    rgb = np.where(a > 1e-4, x[..., :3] / np.maximum(a, 1e-4), 0.0)
    return (np.concatenate([np.clip(rgb, 0, 1), np.clip(a, 0, 1)], -1) * 255.0 + 0.5).astype(np.uint8)


def sample_bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """img (H, W, C) float sampled at float pixel coordinates (h, w); outside the image is zero."""
    h, w = img.shape[:2]
    padded = np.zeros((h + 2, w + 2, img.shape[2]), img.dtype)
    padded[1:-1, 1:-1] = img
    xs = np.clip(xs + 1.0, 0.0, w + 1.0 - 1e-3)
    ys = np.clip(ys + 1.0, 0.0, h + 1.0 - 1e-3)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    x1, y1 = np.minimum(x0 + 1, w + 1), np.minimum(y0 + 1, h + 1)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    top = padded[y0, x0] * (1 - fx) + padded[y0, x1] * fx
    bottom = padded[y1, x0] * (1 - fx) + padded[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def fit_on_canvas(rgba: np.ndarray, size: int, fill: float = FILL) -> np.ndarray:
    """Centre the sticker's visible box, scaled to `fill` of a transparent size x size canvas."""
    from PIL import Image

    ys, xs = np.nonzero(rgba[..., 3] > 8)
    if len(xs) == 0:
        raise ValueError("the still is fully transparent: nothing to animate")
    crop = Image.fromarray(rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1], "RGBA")
    scale = fill * size / max(crop.size)
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(crop, ((size - crop.width) // 2, (size - crop.height) // 2))
    return np.asarray(canvas)


def _affine_inverse(x, y, cx, cy, sx=1.0, sy=1.0, theta=0.0, tx=0.0, ty=0.0):
    """Source coordinates of output pixels for: scale (sx, sy), rotate theta about (cx, cy), then translate."""
    u, v = x - cx - tx, y - cy - ty
    c, s = math.cos(theta), math.sin(theta)
    ur, vr = c * u + s * v, -s * u + c * v  # undo the rotation
    return cx + ur / sx, cy + vr / sy


InverseMap = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


def _motion_map(name: str, size: int, box: tuple[float, float, float, float], rng: random.Random) -> InverseMap:
    """The inverse map (x, y, phi) -> (x_src, y_src) of one motion, with randomised amplitude."""
    left, top, right, bottom = box
    cx, cy, height = (left + right) / 2, (top + bottom) / 2, bottom - top
    amp = rng.uniform(0.7, 1.3)
    k = rng.choice([1, 1, 2])  # cycles per loop

    def rel_height(y):  # 0 at the bottom of the sticker, 1 at its top
        return np.clip((bottom - y) / max(height, 1.0), 0.0, 1.0)

    maps: dict[str, InverseMap] = {
        "squash": lambda x, y, p: _affine_inverse(x, y, cx, bottom, sx=1 / (1 - 0.12 * amp * math.sin(k * p)),
                                                  sy=1 - 0.12 * amp * math.sin(k * p)),
        "bounce": lambda x, y, p: _affine_inverse(
            x, y, cx, bottom, ty=-0.12 * amp * size * abs(math.sin(k * p)),
            sy=1 - 0.08 * amp * max(0.0, math.cos(2 * k * p)) ** 8,
            sx=1 + 0.08 * amp * max(0.0, math.cos(2 * k * p)) ** 8),
        "wobble": lambda x, y, p: _affine_inverse(x, y, cx, bottom, theta=0.18 * amp * math.sin(k * p)),
        "spin": lambda x, y, p: _affine_inverse(x, y, cx, cy, theta=p * (1 if amp > 1 else -1)),
        "pulse": lambda x, y, p: _affine_inverse(
            x, y, cx, cy, sx=1 + 0.1 * amp * max(0.0, math.sin(2 * p)) ** 3,
            sy=1 + 0.1 * amp * max(0.0, math.sin(2 * p)) ** 3),
        "shake": lambda x, y, p: _affine_inverse(
            x, y, cx, cy, tx=0.03 * amp * size * (math.sin(6 * p) + 0.5 * math.sin(10 * p)),
            theta=0.05 * amp * math.sin(8 * p)),
        "float": lambda x, y, p: _affine_inverse(x, y, cx, cy, ty=0.06 * amp * size * math.sin(p),
                                                 theta=0.05 * amp * math.cos(p)),
        "wave": lambda x, y, p: (x, y - 0.04 * amp * size * np.sin(2 * math.pi * (x - left) / (0.8 * size) - k * p)
                                 * (x - left) / max(right - left, 1.0)),
        "sway": lambda x, y, p: (x - 0.12 * amp * size * rel_height(y) ** 2 * math.sin(k * p), y),
        "jelly": lambda x, y, p: (cx + (x - cx) / (1 + 0.08 * amp * math.sin(2 * k * p) * rel_height(y)),
                                  bottom - (bottom - y)
                                  / (1 - 0.08 * amp * math.sin(2 * k * p) * rel_height(y) ** 0.5)),
        "nod": lambda x, y, p: (x, y - 0.1 * amp * size * rel_height(y) ** 2 * (0.5 - 0.5 * math.cos(k * p))),
    }
    if name not in maps:
        raise ValueError(f"motion '{name}': expected one of {', '.join(MOTIONS)}")
    return maps[name]


def animate_still(rgba: np.ndarray, motion: str, size: int = 256, num_frames: int = NUM_FRAMES,
                  seed: int = 0) -> np.ndarray:
    """A seamless loop (num_frames, size, size, 4) uint8 of the still (H, W, 4) doing `motion`."""
    canvas = fit_on_canvas(rgba, size)
    ys, xs = np.nonzero(canvas[..., 3] > 8)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    inverse = _motion_map(motion, size, box, random.Random(f"{seed}:{motion}"))
    src = _premultiply(canvas)
    y, x = np.mgrid[:size, :size].astype(np.float32) + 0.5
    frames = []
    for t in range(num_frames):
        xs_, ys_ = inverse(x, y, 2 * math.pi * t / num_frames)
        frames.append(_unpremultiply(sample_bilinear(src, np.asarray(xs_) - 0.5, np.asarray(ys_) - 0.5)))
    return np.stack(frames)


def motion_caption(subject: str, motion: str) -> str:
    """'grinning face' + 'bounce' -> 'grinning face, bouncing up and down'."""
    return f"{subject}, {MOTIONS[motion].phrase}"


def pick_motions(key: str, n: int, motions: list[str] | None = None) -> list[str]:
    """`n` distinct motions for one still, chosen reproducibly from its key."""
    names = list(motions or MOTIONS)
    return random.Random(f"motions:{key}").sample(names, min(n, len(names)))
