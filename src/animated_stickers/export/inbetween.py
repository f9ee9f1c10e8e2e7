"""Motion-compensated in-between frames: dense optical flow (OpenCV DIS, ../flow.py), then warp and blend.

A plain cross-fade of two sticker frames shows both poses at once (a double image) when the
motion between them is more than a few pixels. Here each pair gets a dense flow field F with
A(x) ~ B(x + F(x)), estimated on small premultiplied copies (long side <= 128 px: fast, and the
coarse scale is where sticker motion lives). The frame at time w in (0, 1) samples A back along the
flow F and B back along the reverse flow G (B(x) ~ A(x + G(x))), then blends in premultiplied RGBA:
    I_w(y) = (1 - w) A(y - w F(y)) + w B(y - (1 - w) G(y))
Flows evaluated at y instead of at the source point assume smooth motion; where F and G disagree
(occlusions, wrong matches) the frame falls back to the plain cross-fade.
Measured (issue 16; 20 Fluent clips at 256 px, every other frame dropped and re-made, PSNR on
premultiplied RGBA): DIS 34.92 dB vs the numpy Lucas-Kanade it replaced 34.93 (cross-fade 33.20),
and 26.71 vs 26.63 with 4x the motion; 74-91 ms per in-between vs 276-338 ms, on one core.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..flow import frame_flow

FLOW_SIZE = 128  # long side of the copies the flow is estimated on
FLOW_PRESET, FINEST_SCALE = "medium", 0  # full-resolution DIS at 128 px: +0.1 dB over the preset's half


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) float32 -> (h, w, C) for (w, h) = size: area average down, bilinear up."""
    down = size[0] < arr.shape[1]
    out = cv2.resize(arr, size, interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
    return out.reshape(size[1], size[0], arr.shape[-1])  # cv2 drops a single channel axis


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample img (H, W, C) at x + flow(x) with bilinear interpolation (coordinates clamped)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    out = cv2.remap(np.ascontiguousarray(img, np.float32), xx + flow[..., 0], yy + flow[..., 1],
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(img.shape)


def pair_flows(pm_a: np.ndarray, pm_b: np.ndarray, tolerance: float = 2.0) -> tuple[np.ndarray, ...]:
    """(F, G, trust) at full size for two premultiplied frames, estimated on copies <= FLOW_SIZE px.

    F: A(x) ~ B(x + F(x)); G: B(x) ~ A(x + G(x)); trust (H, W, 1) in [0, 1] is ~1 where following F
    then G comes back to the start within about `tolerance` small-grid pixels (plus 25% of |F|).
    """
    h, w = pm_a.shape[:2]
    s = min(1.0, FLOW_SIZE / max(h, w))
    small = (max(1, round(w * s)), max(1, round(h * s)))
    a, b = (_resize(p, small) if s < 1.0 else p for p in (pm_a, pm_b))
    fwd, bwd = (frame_flow(p, q, FLOW_PRESET, FINEST_SCALE) for p, q in ((a, b), (b, a)))
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
