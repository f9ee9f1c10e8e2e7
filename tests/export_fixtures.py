"""Synthetic RGBA animations for the export tests (made in memory, tiny and fast)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def moving_disc(size: int = 64, frames: int = 8, soft: float = 3.0, noise: float = 0.0,
                seed: int = 0) -> list[Image.Image]:
    """A soft-edged coloured disc circling on a transparent canvas; one loop of `frames` frames.

    `soft` is the edge width in pixels (partial alpha); `noise` > 0 adds per-pixel colour noise
    (amplitude in 0..255) inside the disc, which makes every encoder work hard.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    r = size * 0.28
    out = []
    for t in range(frames):
        cx = size / 2 + size * 0.15 * np.cos(2 * np.pi * t / frames)
        cy = size / 2 + size * 0.15 * np.sin(2 * np.pi * t / frames)
        d = np.hypot(xx - cx, yy - cy)
        alpha = np.clip((r - d) / soft + 0.5, 0.0, 1.0)
        rgb = np.stack([200 + 0 * xx, 255 * xx / size, 255 * yy / size], axis=-1)
        if noise:
            rgb = rgb + rng.uniform(-noise, noise, rgb.shape)
        rgba = np.concatenate([np.clip(rgb, 0, 255), 255 * alpha[..., None]], axis=-1)
        out.append(Image.fromarray(np.round(rgba).astype(np.uint8), "RGBA"))
    return out


def as_array(frames: list[Image.Image]) -> np.ndarray:
    """(T, H, W, 4) uint8 of RGBA frames."""
    return np.stack([np.asarray(f.convert("RGBA")) for f in frames])
