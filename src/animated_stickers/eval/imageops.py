"""Small vectorised numpy image operations used by the automatic measures (no scipy needed).

Arrays are channel-last: frames (T, H, W, C), masks (T, H, W) or (H, W). Spatial axes are passed
explicitly so one function serves single images and stacks.
"""

from __future__ import annotations

import numpy as np


def _window_slices(x: np.ndarray, r: int, axis: int, mode: str, fill=None):
    """The 2r+1 shifted views of `x` along `axis` (padded by edge replication or a constant)."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    p = np.pad(x, pad, mode="edge") if mode == "edge" else np.pad(x, pad, constant_values=fill)
    n = x.shape[axis]
    idx = [slice(None)] * x.ndim
    for k in range(2 * r + 1):
        idx[axis] = slice(k, k + n)
        yield p[tuple(idx)]


def _box1d(x: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Mean over a (2r+1) window along `axis`, edges replicated (a few shifted adds: r is small here)."""
    views = _window_slices(x.astype(np.float32, copy=False), r, axis, "edge")
    out = next(views).copy()
    for v in views:
        out += v
    return out / np.float32(2 * r + 1)


def blur(x: np.ndarray, r: int, axes: tuple[int, int]) -> np.ndarray:
    """Approximate Gaussian blur (two box passes, sigma ~ r) over the two spatial `axes`."""
    if r <= 0:
        return x.astype(np.float32)
    for _ in range(2):
        for ax in axes:
            x = _box1d(x, r, ax)
    return x


def _max_filter(mask: np.ndarray, r: int, outside: bool) -> np.ndarray:
    """Max over a (2r+1)^2 square on the last two axes; `outside` is the value beyond the canvas."""
    out = mask
    for ax in (-2, -1):
        views = _window_slices(out, r, ax % out.ndim, "constant", outside)
        acc = next(views).copy()
        for v in views:
            acc |= v
        out = acc
    return out


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1)^2 square over the last two axes; outside the canvas counts as empty."""
    return mask.copy() if r <= 0 else _max_filter(mask, r, False)


def erode(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary erosion over the last two axes; the canvas border does not erode (a body may touch it)."""
    # Complement outside the canvas is False: beyond the border behaves as if it were body.
    return mask.copy() if r <= 0 else ~_max_filter(~mask, r, False)


def opening(mask: np.ndarray, r: int) -> np.ndarray:
    """Erode then dilate: removes specks narrower than 2r+1 pixels, keeps bodies."""
    return dilate(erode(mask, r), r)


def downscale(x: np.ndarray, f: int, axes: tuple[int, int]) -> np.ndarray:
    """Area-average by an integer factor `f` over the two spatial axes (remainder rows/cols cropped)."""
    if f <= 1:
        return x
    a0, a1 = (a % x.ndim for a in axes)
    h, w = (x.shape[a0] // f) * f, (x.shape[a1] // f) * f
    x = np.take(np.take(x, np.arange(h), axis=a0), np.arange(w), axis=a1)
    shape = list(x.shape)
    shape[a1 : a1 + 1] = [w // f, f]
    shape[a0 : a0 + 1] = [h // f, f]
    return x.reshape(shape).mean(axis=(a0 + 1, a1 + 2), dtype=np.float32)


def shift(x: np.ndarray, dy: int, dx: int, axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """Translate by whole pixels over `axes`, filling the uncovered part with zeros (no wrap-around)."""
    out = np.zeros_like(x)
    a0, a1 = (a % x.ndim for a in axes)
    h, w = x.shape[a0], x.shape[a1]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    src[a0], dst[a0] = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    src[a1], dst[a1] = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[tuple(dst)] = x[tuple(src)]
    return out


def centroid(weights: np.ndarray) -> np.ndarray:
    """Weighted centroid (y, x) over the last two axes; the canvas centre where the weight is zero."""
    h, w = weights.shape[-2:]
    wsum = weights.sum(axis=(-2, -1))
    ys = (weights.sum(-1) * np.arange(h)).sum(-1)
    xs = (weights.sum(-2) * np.arange(w)).sum(-1)
    safe = np.maximum(wsum, 1e-9)
    cy = np.where(wsum > 0, ys / safe, (h - 1) / 2)
    cx = np.where(wsum > 0, xs / safe, (w - 1) / 2)
    return np.stack([cy, cx], -1)
