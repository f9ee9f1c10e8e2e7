"""Key a solid background colour to transparency (paper 1: stickers sit on a solid background that is masked).

Used for a user's videos that have no alpha channel. The background colour B is taken from the border of
the frames (median over all frames). Each pixel I gets the smallest alpha that explains it as a colour C
over B, I = a*C + (1-a)*B with C inside [0, 1] ("colour to alpha"); that raw alpha is then ramped so pixels
near B vanish and clearly different ones become opaque, and C = (I - (1-a)*B) / a is un-mixed from B
("despill"), so edges keep no halo of the background colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOLERANCE = 0.08  # raw alpha up to this is background (noise, compression)
SOFTNESS = 0.25  # raw alpha over which the output alpha ramps from 0 to 1
MAX_BORDER_SPREAD = 0.06  # border pixels spread more than this: the background is not solid


@dataclass
class KeyInfo:
    """The keyed colour (RGB uint8) and whether the border looked like one solid colour."""

    color: tuple[int, int, int]
    solid: bool
    spread: float  # median colour distance of border pixels from the colour (0 = perfectly solid)


def has_alpha(frames: np.ndarray) -> bool:
    """True when RGBA frames (T, H, W, 4) have any pixel that is not fully opaque."""
    return frames.shape[-1] == 4 and bool((frames[..., 3] < 255).any())


def _border(frames: np.ndarray, width: int) -> np.ndarray:
    """All border pixels of all frames as (N, 3) float in [0, 1]."""
    rgb = frames[..., :3].astype(np.float32) / 255.0
    w = max(1, width)
    parts = [rgb[:, :w].reshape(-1, 3), rgb[:, -w:].reshape(-1, 3),
             rgb[:, :, :w].reshape(-1, 3), rgb[:, :, -w:].reshape(-1, 3)]
    return np.concatenate(parts)


def _distance(rgb: np.ndarray, color: np.ndarray) -> np.ndarray:
    return np.linalg.norm(rgb - color, axis=-1) / np.sqrt(3.0)


def detect_background(frames: np.ndarray, border: int = 2) -> KeyInfo:
    """The background colour from the frame borders, and whether it is solid enough to key."""
    px = _border(frames, border)
    color = np.median(px, axis=0)
    spread = float(np.median(_distance(px, color)))
    rgb = tuple(round(float(c) * 255) for c in color)
    return KeyInfo(color=rgb, solid=spread <= MAX_BORDER_SPREAD, spread=spread)


def key_background(frames: np.ndarray, color: tuple[int, int, int] | None = None, tolerance: float = TOLERANCE,
                   softness: float = SOFTNESS) -> np.ndarray:
    """Straight RGBA (T, H, W, 4) uint8 with the background colour keyed out (auto-detected if None)."""
    if color is None:
        color = detect_background(frames).color
    bg = np.asarray(color, np.float32) / 255.0
    rgb = frames[..., :3].astype(np.float32) / 255.0
    # smallest alpha per channel that keeps C in [0, 1]: (I - B) / (1 - B) above B, (B - I) / B below
    up = np.where(rgb > bg, (rgb - bg) / np.maximum(1.0 - bg, 1e-6), 0.0)
    down = np.where(rgb < bg, (bg - rgb) / np.maximum(bg, 1e-6), 0.0)
    raw = np.maximum(up, down).max(axis=-1)
    alpha = np.clip((raw - tolerance) / max(softness, 1e-6), 0.0, 1.0)
    if frames.shape[-1] == 4:  # keep any existing transparency
        alpha = alpha * (frames[..., 3].astype(np.float32) / 255.0)
    a = alpha[..., None]
    # despill: remove the background's share from semi-transparent edge pixels
    fg = np.where(a > 1e-3, (rgb - (1.0 - a) * bg) / np.maximum(a, 1e-3), 0.0)
    out = np.concatenate([np.clip(fg, 0.0, 1.0), a], axis=-1)
    return (out * 255.0 + 0.5).astype(np.uint8)


def ensure_alpha(frames: np.ndarray, color: tuple[int, int, int] | None = None) -> tuple[np.ndarray, KeyInfo | None]:
    """Frames unchanged when they already have alpha; else keyed when the border is one solid colour.

    Returns the frames and the KeyInfo used (None when nothing was keyed).
    """
    if has_alpha(frames):
        return frames, None
    info = detect_background(frames)
    if color is not None:
        info = KeyInfo(color=tuple(color), solid=True, spread=info.spread)
    if not info.solid:
        return frames, None
    return key_background(frames, info.color), info
