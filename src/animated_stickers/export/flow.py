"""Motion-compensated in-between frames: dense pyramidal Lucas-Kanade flow in numpy, then warp and blend.

A plain cross-fade of two sticker frames shows both poses at once (a double image) when the
motion between them is more than a few pixels. Here each pair gets a dense flow field F with
A(x) ~ B(x + F(x)), estimated on small premultiplied copies (long side <= 128 px: fast, and the
coarse scale is where sticker motion lives). The frame at time w in (0, 1) samples A back along the
flow F and B back along the reverse flow G (B(x) ~ A(x + G(x))), then blends in premultiplied RGBA:
    I_w(y) = (1 - w) A(y - w F(y)) + w B(y - (1 - w) G(y))
Flows evaluated at y instead of at the source point assume smooth motion; where F and G disagree
(occlusions, wrong matches) the frame falls back to the plain cross-fade.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FLOW_SIZE = 128  # long side of the copies the flow is estimated on


def _resize(arr: np.ndarray, size: tuple[int, int], resample=Image.Resampling.BILINEAR) -> np.ndarray:
    """Resize an (H, W, C) float array channel by channel to (w, h) = size."""
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(arr[..., c], np.float32), "F")
                                .resize(size, resample)) for c in range(arr.shape[-1])], axis=-1)


def _box(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges clamped; a is (H, W, ...) ."""
    p = np.pad(a, [(r + 1, r), (r + 1, r)] + [(0, 0)] * (a.ndim - 2), mode="edge")
    c = p.cumsum(0).cumsum(1)
    k = 2 * r + 1
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample img (H, W, C) at x + flow(x) with bilinear interpolation (coordinates clamped)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    x = np.clip(xx + flow[..., 0], 0, w - 1)
    y = np.clip(yy + flow[..., 1], 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _features(pm: np.ndarray) -> np.ndarray:
    """(H, W, 2) channels to match: premultiplied luma and alpha (shape and shading both count)."""
    luma = pm[..., 0] * 0.299 + pm[..., 1] * 0.587 + pm[..., 2] * 0.114
    return np.stack([luma, pm[..., 3]], axis=-1)


def lucas_kanade(a: np.ndarray, b: np.ndarray, levels: int = 4, radius: int = 4, iters: int = 3,
                 damping: float = 1e-4) -> np.ndarray:
    """Dense flow (H, W, 2) in pixels with a(x) ~ b(x + flow(x)); a, b are (H, W, C) float arrays."""
    pyramid = [(a, b)]
    for _ in range(levels - 1):
        h, w = pyramid[-1][0].shape[:2]
        if min(h, w) < 16:
            break
        half = (max(1, w // 2), max(1, h // 2))
        pyramid.append(tuple(_resize(x, half, Image.Resampling.BOX) for x in pyramid[-1]))
    flow = np.zeros(pyramid[-1][0].shape[:2] + (2,), np.float32)
    for la, lb in reversed(pyramid):
        h, w = la.shape[:2]
        if flow.shape[:2] != (h, w):  # coarse -> fine: upsample and rescale the vectors
            scale = np.array([w / flow.shape[1], h / flow.shape[0]], np.float32)
            flow = _resize(flow, (w, h)) * scale
        for _ in range(iters):
            bw = warp(lb, flow)
            gy, gx = np.gradient(0.5 * (la + bw), axis=(0, 1))
            it = bw - la
            sxx, syy, sxy = (_box((p * q).sum(-1), radius) for p, q in ((gx, gx), (gy, gy), (gx, gy)))
            sxt, syt = (_box((p * it).sum(-1), radius) for p in (gx, gy))
            sxx, syy = sxx + damping, syy + damping  # flat regions: no evidence, no motion
            det = sxx * syy - sxy * sxy
            du = (-syy * sxt + sxy * syt) / det
            dv = (sxy * sxt - sxx * syt) / det
            flow = flow + np.clip(np.stack([du, dv], -1), -2.0, 2.0)  # small steps; the pyramid does the rest
        flow = _box(flow, 1)  # light smoothing keeps the warp coherent
    return flow.astype(np.float32)


def pair_flows(pm_a: np.ndarray, pm_b: np.ndarray, tolerance: float = 2.0) -> tuple[np.ndarray, ...]:
    """(F, G, trust) at full size for two premultiplied frames, estimated on copies <= FLOW_SIZE px.

    F: A(x) ~ B(x + F(x)); G: B(x) ~ A(x + G(x)); trust (H, W, 1) in [0, 1] is ~1 where following F
    then G comes back to the start within about `tolerance` small-grid pixels (plus 25% of |F|).
    """
    h, w = pm_a.shape[:2]
    s = min(1.0, FLOW_SIZE / max(h, w))
    small = (max(1, round(w * s)), max(1, round(h * s)))
    fa, fb = (_features(_resize(p, small, Image.Resampling.BOX)) for p in (pm_a, pm_b))
    fwd, bwd = lucas_kanade(fa, fb), lucas_kanade(fb, fa)
    mismatch = np.linalg.norm(fwd + warp(bwd, fwd), axis=-1, keepdims=True)
    allowed = tolerance + 0.25 * np.linalg.norm(fwd, axis=-1, keepdims=True)
    trust = np.exp(-((mismatch / allowed) ** 4)).astype(np.float32)  # flat near 1, then falls fast
    if s == 1.0:
        return fwd, bwd, trust
    return _resize(fwd, (w, h)) / s, _resize(bwd, (w, h)) / s, _resize(trust, (w, h))


def inbetween(pm_a: np.ndarray, pm_b: np.ndarray, flows: tuple[np.ndarray, ...], w: float) -> np.ndarray:
    """Premultiplied frame at time w between A (w=0) and B (w=1), given pair_flows(A, B).

    Where the flows disagree (occlusions, wrong matches) it fades to the plain cross-fade instead
    of smearing a wrong warp.
    """
    fwd, bwd, trust = flows
    warped = (1.0 - w) * warp(pm_a, -w * fwd) + w * warp(pm_b, -(1.0 - w) * bwd)
    return trust * warped + (1.0 - trust) * ((1.0 - w) * pm_a + w * pm_b)
