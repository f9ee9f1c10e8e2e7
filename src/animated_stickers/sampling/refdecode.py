"""The sampling side of reference-guided decoding (models/decoder.py): output size and references.

With a decoder, frames decode at the input's own resolution (its long side, rounded up to a whole
multiple of the model canvas, at least 256 px and at most 512 px), using the input sticker itself as
the reference. The reference canvas is the model canvas scaled by that whole factor, so sticker and
decoded frames line up to the pixel. Without a decoder, frames stay 128 px and are upscaled (said once).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from PIL import Image

from ..rgba import Placement, resize_image
from .preprocess import Sticker

MIN_SIZE, MAX_SIZE = 256, 512
log = logging.getLogger(__name__)
_warned = False


def output_size(stickers: list[Sticker], canvas: int) -> int:
    """One decode size for the batch: the largest input's long side, rounded up to a multiple of
    `canvas`, clamped to [max(MIN_SIZE, canvas), max(MAX_SIZE, canvas)]."""
    long_side = max(max(s.placement.original_size) for s in stickers)
    size = math.ceil(long_side / canvas) * canvas
    return max(max(MIN_SIZE, canvas), min(size, max(MAX_SIZE, canvas)))


def reference_canvas(sticker: Sticker, size: int) -> tuple[Image.Image, Placement]:
    """The sticker on a size x size canvas, placed exactly like the model canvas scaled by size/canvas."""
    p = sticker.placement
    k = size // p.canvas  # whole factor (output_size guarantees it)
    left, top, w, h = (v * k for v in p.box)
    resized = resize_image(sticker.rgba, (w, h))  # premultiplied Lanczos, like the model canvas
    out = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    out.paste(resized, (left, top))
    return out, Placement(original_size=p.original_size, box=(left, top, w, h), canvas=size)


def warn_no_decoder() -> None:
    """Say once per process that this model decodes at its native size and upscales."""
    global _warned
    if not _warned:
        _warned = True
        log.warning("this model has no reference decoder: frames are decoded at its native size and upscaled")


def references(has_decoder: bool, render: str, stickers: list[Sticker], canvas: int
               ) -> tuple[np.ndarray | None, list[Placement]]:
    """The pipelines' hook: reference canvases (B, S, S, 4) straight RGBA float32 in [0, 1] and the
    placements to restore frames with. Frames are drawn at the input's size by the warp render or a
    reference decoder; otherwise (the fuse render of a model without a decoder) (None, the model-canvas
    placements)."""
    if not (has_decoder or render == "warp"):
        warn_no_decoder()
        return None, [s.placement for s in stickers]
    size = output_size(stickers, canvas)
    refs = [reference_canvas(s, size) for s in stickers]
    return np.stack([np.asarray(im, np.float32) / 255.0 for im, _ in refs]), [p for _, p in refs]
