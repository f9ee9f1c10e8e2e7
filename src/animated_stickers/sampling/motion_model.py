"""A sticker animated by the learned motion model (issue 28; the motion path, motion_pipeline.py).

still + prompt -> the network's spectral volume (motion_onnx.py: DDIM with IP2P guidance, on torch or the
ONNX compile) -> flows at any frame count (motion/spectral.py render_flows; the still is exactly frame
`cond`) -> the full-size sticker moved along them, bicubic (`render_frames`, in 8 bits; `render_motion` is
the float reference, flow.py warp_along): every pixel is the sticker's and the loop closes by construction.
A model with `canonical_phase` in its config (trained on canonical-phase volumes, motion/spectral.py)
samples volumes whose loop starts at the canonical phase: the still is frame `cond` all the same, placed
where the weighted motion of the loop's fundamental crosses zero. The prompt reaches the motion only through
the text encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from ..flow import warp_along
from ..motion.spectral import render_flows
from ..rgba import premultiply, unpremultiply

# A rigid move laid over the generated motion: frame t -> the inverse map (xs, ys) (side, side) float32 in
# pixels of the still's square (each output pixel shows the moved sticker at that place), or None where the
# move is the identity (motion/procedural.source_coords makes them).
Rigid = Callable[[int], "tuple[np.ndarray, np.ndarray] | None"]

if TYPE_CHECKING:  # the render is numpy + OpenCV: the torch-free engine (motion_onnx.py) uses it without torch
    from ..models.motion_net import MotionNet


def motion_volume(net: MotionNet, text_encoders, still: np.ndarray, prompt: str, seed: int = 0, steps: int = 20,
                  image_guidance: float = 1.0, text_guidance: float = 1.0) -> np.ndarray:
    """Straight RGBA still (H, W, 4) uint8 + prompt -> spectral volume (4K, s, s) in canvas units of the
    still's square (the still centred on a transparent square of its long side). The torch engine's
    (motion_onnx.TorchMotionEngine): the seed -> x_T rule of both engines and of the motion path."""
    from .motion_onnx import TorchMotionEngine

    return TorchMotionEngine(net, text_encoders).volumes([still], [prompt], [seed], steps, image_guidance,
                                                         text_guidance)[0]


def still_square(still: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Straight RGBA still (H, W, 4) uint8 -> (its long side's square (side, side, 4) straight float32 in [0, 1],
    (top, left) of the still on it): fit_on_square's placement at the still's own size, the grid of the field."""
    h, w = still.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = np.zeros((side, side, 4), np.float32)
    square[top:top + h, left:left + w] = still.astype(np.float32) / 255
    return square, (top, left)


def render_motion(still: np.ndarray, volume: np.ndarray, num_frames: int, cond: int = 0) -> np.ndarray:
    """Straight RGBA still (H, W, 4) uint8 moved along a spectral volume: (T, H, W, 4) float32 straight RGBA in
    [0, 1]; frame `cond` is the still (its premultiplied pixels exactly). The float reference of
    `render_frames` (the product's render; within 1/255 of it), for measures that want the whole loop."""
    h, w = still.shape[:2]
    square, (top, left) = still_square(still)
    flows = render_flows(volume, num_frames, cond)  # (T, s, s, 2) px of the volume's grid
    frames = unpremultiply(warp_along(premultiply(square), flows))  # (T, side, side, 4)
    return frames[:, top:top + h, left:left + w]


def render_frames(still: np.ndarray, volume: np.ndarray, num_frames: int, cond: int = 0,
                  rigid: Rigid | None = None) -> Iterator[np.ndarray]:
    """The motion path's render: the still (H, W, 4) straight RGBA uint8 moved along a spectral volume, one
    straight RGBA uint8 frame (H, W, 4) at a time, so a long loop of a large sticker never holds a float video.
    Frame `cond` is the still's own bytes and the loop closes by construction. With `rigid`, frame t shows the
    moved sticker moved again by rigid(t), in one resampling.

    In 8 bits: bicubic cv2.remap of the premultiplied bytes, unpremultiplied by Pillow ("RGBa" -> "RGBA", which
    clamps colour above alpha as rgba.unpremultiply does). 48 frames of the README example at 512 px: 1.35 s
    against 4.6 s for `render_motion`'s float path (one busy core), premultiplied colour 0.024/255 apart on
    average, alpha at most 1/255."""
    h, w = still.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2  # the still on its square, the field's grid (still_square)
    pm = np.asarray(Image.fromarray(still, "RGBA").convert("RGBa"))  # (H, W, 4) premultiplied uint8
    gy, gx = np.mgrid[:h, :w].astype(np.float32)  # (H, W) px of the still
    flows = render_flows(volume, num_frames, cond)  # (T, s, s, 2) px of the volume's grid: cheap at s = 64
    for t, flow in enumerate(flows):
        move = rigid(t) if rigid is not None else None
        if move is None and t == cond:  # zero flow, no rigid move: the sticker itself
            yield still.copy()
            continue
        d = cv2.resize(flow, (side, side), interpolation=cv2.INTER_LINEAR) * np.float32(side / flow.shape[0])
        if move is None:  # output x shows the sticker at x + D(x)
            d = d[top:top + h, left:left + w]  # (H, W, 2) px
            mx, my = gx + d[..., 0], gy + d[..., 1]
        else:  # at r(x) + D(r(x)), r = move: the inverse map (side, side) in px of the square
            mx, my = _then_move(d, *move)
            mx, my = mx[top:top + h, left:left + w] - left, my[top:top + h, left:left + w] - top
        moved = cv2.remap(pm, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        yield np.asarray(Image.frombytes("RGBa", (w, h), moved.tobytes()).convert("RGBA"))


def _then_move(d: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backward flow D (S, S, 2) px of the square, then the inverse map r = (xs, ys) (S, S): the map
    x -> r(x) + D(r(x)), so the two moves cost one resampling of the sticker."""
    dx, dy = (cv2.remap(np.ascontiguousarray(d[..., i]), xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
              for i in (0, 1))  # D sampled at r(x)
    return xs + dx, ys + dy
