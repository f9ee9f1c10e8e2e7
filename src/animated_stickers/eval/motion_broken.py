"""Broken copies of a real clip's motion, one per way a result can move unlike the artist's clip.

Each kind starts from the real clip in the motion basis (motionref.to_basis: premultiplied (T, h, w, 4),
the conditioning frame at `cond`) and moves the **still** (its conditioning frame) with the warp the
project renders with (flow.warp_along), so the look never changes, only the motion:
  small     the artist's motion scaled to 0.15 (crisp and looping, but barely moving)
  bulk      the still moved as one rigid piece (the best similarity transform of each frame's motion,
            rescaled to the artist's motion size): right size, no parts
  frozen    the still repeated
  swapped   another emoji's artist motion laid on this still, rescaled to this clip's size: right
            size, wrong places
and one that should pass:
  warped    the artist's own motion at full size, by the same warp: what a perfect motion model plus
            the warp render would make
"""

from __future__ import annotations

import cv2
import numpy as np

from ..flow import frame_flow, warp_along
from .motionref import SOLID, similarity_residual

SMALL_SCALE = 0.15
MOTION_BROKEN = ("small", "bulk", "frozen", "swapped")
# Which motion criterion each broken kind is built to fail (it must fail at least one of them).
MOTION_TARGETS = {"small": ("motion_size",), "frozen": ("motion_size", "motion_where", "motion_parts"),
                  "bulk": ("motion_parts",), "swapped": ("motion_where",)}


def pull_flows(basis: np.ndarray, cond: int) -> np.ndarray:
    """Backward flows (T, h, w, 2): frame t at x shows the conditioning frame at x + flow (zero at cond):
    what flow.warp_along needs to move the still into each frame."""
    flows = np.zeros((*basis.shape[:3], 2), np.float32)
    for t in range(basis.shape[0]):
        if t != cond:
            flows[t] = frame_flow(basis[t], basis[cond])
    return flows


def _mean_body(flows: np.ndarray, mask: np.ndarray, cond: int) -> float:
    others = [t for t in range(flows.shape[0]) if t != cond]
    return float(np.linalg.norm(flows[others][:, mask], axis=-1).mean()) if mask.any() else 0.0


def small(basis: np.ndarray, pull: np.ndarray, cond: int) -> np.ndarray:
    return warp_along(basis[cond], pull * SMALL_SCALE)


def warped(basis: np.ndarray, pull: np.ndarray, cond: int) -> np.ndarray:
    return warp_along(basis[cond], pull)


def frozen(basis: np.ndarray, cond: int) -> np.ndarray:
    return np.repeat(basis[cond:cond + 1], basis.shape[0], axis=0)


def bulk(basis: np.ndarray, push: np.ndarray, cond: int, rng: np.random.Generator) -> np.ndarray:
    """`push`: forward flows (T, h, w, 2) from the conditioning frame (motionref.basis_flows). Each frame is
    the still under one similarity transform whose mean displacement over the body equals the artist's."""
    still = basis[cond]
    mask = still[..., 3] > SOLID
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction)
    out = np.empty_like(basis)
    for t in range(basis.shape[0]):
        size = float(np.linalg.norm(push[t][mask], axis=1).mean()) if t != cond else 0.0
        fitted, _ = similarity_residual(push[t], mask) if size > 0 else (np.zeros((len(xs), 2)), None)
        fitted_size = float(np.linalg.norm(fitted, axis=1).mean())
        src = np.stack([xs, ys], 1).astype(np.float32)
        if fitted_size > 1e-6:
            dst = src + fitted * (size / fitted_size)  # the rigid part, grown to the whole motion's size
        else:
            dst = src + direction * size  # no rigid part at all: a plain shift of the same size
        matrix, _ = cv2.estimateAffinePartial2D(src, dst.astype(np.float32), method=cv2.LMEDS)
        if matrix is None:  # degenerate body (a line): shift only
            matrix = np.array([[1, 0, (dst - src)[:, 0].mean()], [0, 1, (dst - src)[:, 1].mean()]])
        out[t] = cv2.warpAffine(still, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    out[cond] = still
    return np.clip(out, 0, 1)


def swapped(basis: np.ndarray, pull: np.ndarray, cond: int, other_pull: np.ndarray) -> np.ndarray:
    """Another clip's backward flows (same canvas) laid on this still, scaled to this clip's motion size."""
    mask = basis[cond, ..., 3] > SOLID
    theirs = _mean_body(other_pull, mask, cond)
    ours = _mean_body(pull, mask, cond)
    other = other_pull * (ours / theirs) if theirs > 1e-6 else other_pull
    if other.shape[1:3] != basis.shape[1:3]:
        h, w = basis.shape[1:3]
        sy, sx = h / other.shape[1], w / other.shape[2]
        other = np.stack([cv2.resize(f, (w, h)) * np.array([sx, sy], np.float32) for f in other])
    return warp_along(basis[cond], other)
