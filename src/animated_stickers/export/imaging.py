"""RGBA frame operations for export: validation, fitting to a preset's canvas, colour bleed.

Frames are PIL images in straight (not premultiplied) RGBA at the edges. Anything that filters or
mixes pixels (resize, blend, blur) works on premultiplied float32 (H, W, 4) arrays in [0, 1], so
colour from transparent pixels never leaks into visible ones (no dark or bright fringes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..errors import UserError
from ..rgba import fit_box, fit_on_square, premultiply_image, resize_channel, resize_image


def check_frames(frames: Sequence[Image.Image], what: str = "frames") -> list[Image.Image]:
    """Return `frames` as RGBA images of one size; raise UserError naming the first bad one."""
    if isinstance(frames, Image.Image) or not isinstance(frames, Sequence) or len(frames) == 0:
        raise UserError(f"{what}: expected a non-empty list of PIL images, got {type(frames).__name__}"
                        + (" (empty)" if isinstance(frames, Sequence) and len(frames) == 0 else ""))
    out = []
    for i, f in enumerate(frames):
        if not isinstance(f, Image.Image):
            raise UserError(f"{what}[{i}]: expected a PIL image, got {type(f).__name__}")
        if f.width < 1 or f.height < 1:
            raise UserError(f"{what}[{i}]: empty image {f.size}")
        if f.size != frames[0].size:
            raise UserError(f"{what}[{i}]: size {f.size} differs from {what}[0] size {frames[0].size}")
        out.append(f if f.mode == "RGBA" else f.convert("RGBA"))
    return out


def fit_frames(frames: Sequence[Image.Image], long_side: int, square: bool = False) -> list[Image.Image]:
    """Scale frames so the long side is `long_side`; with `square`, centre them on a transparent square."""
    frames = check_frames(frames)
    if square:
        return [fit_on_square(f, long_side)[0] for f in frames]
    size = fit_box(frames[0].size, (long_side, long_side))[2:]
    return [resize_image(f, size) for f in frames]


def _pull_push(pm: np.ndarray) -> np.ndarray:
    """Straight colour (H, W, 3) everywhere: own colour where alpha > 0, else from coarser levels."""
    h, w = pm.shape[:2]
    if max(h, w) <= 1:
        return pm[..., :3] / max(float(pm[..., 3].max()), 1e-6)
    small = (max(1, w // 2), max(1, h // 2))
    coarse = np.stack([resize_channel(pm[..., c], small, Image.Resampling.BOX) for c in range(4)], axis=-1)
    up = np.stack([resize_channel(c, (w, h), Image.Resampling.BILINEAR)
                   for c in np.moveaxis(_pull_push(coarse), -1, 0)], axis=-1)
    alpha = pm[..., 3:4]
    own = pm[..., :3] / np.maximum(alpha, 1e-6)
    return np.where(alpha > 1e-6, own, up)


def bleed_colour(img: Image.Image) -> Image.Image:
    """Fill the colour of fully transparent pixels from nearby visible ones; alpha is unchanged.

    Lossy codecs (VP9 4:2:0 chroma, lossy WebP) smear colour across the alpha edge; when the hidden
    colour is black the edge turns dark. A pull-push fill (alpha-weighted averages on ever coarser
    grids, pushed back up) gives hidden pixels their neighbours' colour; smooth fills also compress
    better.
    """
    arr = np.asarray(img.convert("RGBA"))
    hidden = arr[..., 3] == 0
    if not hidden.any() or hidden.all():
        return img.convert("RGBA")
    # The fill only has to be smooth, so compute it on a 4x coarser grid (chroma is 2x2 anyway).
    w, h = img.size
    small = (max(1, w // 4), max(1, h // 4))
    pm = premultiply_image(img)
    coarse = np.stack([resize_channel(pm[..., c], small, Image.Resampling.BOX) for c in range(4)], axis=-1)
    fill = np.stack([resize_channel(c, (w, h), Image.Resampling.BILINEAR)
                     for c in np.moveaxis(_pull_push(coarse), -1, 0)], axis=-1)
    out = arr.copy()
    out[hidden, :3] = np.round(np.clip(fill[hidden], 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(out, "RGBA")
