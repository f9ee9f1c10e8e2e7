"""Input stickers and prompts: checks, background keying, fit to the model canvas and back.

A sticker of any size is fitted on the square canvas (rgba.py: aspect kept, premultiplied Lanczos,
centred on transparency). Its `Placement` remembers where it went, and `rgba.restore_from_square`
maps generated frames back to the input's own size (inputs over io_limits.MAX_WORK_SIDE, 2048 px, are
scaled down to it on load). Images without transparency get their background
keyed out when the border is one uniform colour; otherwise they are refused with one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError
from ..io_limits import MAX_WORK_SIDE, check_budget, pillow_guard, reduce_to_work_size
from ..keying import detect_background, key_background
from ..rgba import Placement, fit_on_square

MIN_SIDE = 16
MAX_SIDE = 8192


@dataclass
class Sticker:
    """A prepared input: the straight RGBA sticker at its own size and its canvas version."""

    name: str
    rgba: Image.Image  # original size, RGBA (keyed if it had no alpha)
    canvas: Image.Image  # canvas x canvas RGBA
    placement: Placement


def check_size(size: tuple[int, int], name: str) -> None:
    """UserError unless both sides are within [MIN_SIDE, MAX_SIDE] pixels."""
    w, h = size
    if min(w, h) < MIN_SIDE:
        raise UserError(f"image '{name}' is {w}x{h} px: expected at least {MIN_SIDE} px on each side")
    if max(w, h) > MAX_SIDE:
        raise UserError(f"image '{name}' is {w}x{h} px: expected at most {MAX_SIDE} px on each side")


def load_image(path: str | Path) -> Image.Image:
    """Open an image file (PNG/WebP/JPEG/...; first frame if animated), size-checked before decoding."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"image '{p}' is a folder: expected an image file")
    if not p.is_file():
        raise UserError(f"image '{p}' does not exist")
    try:
        with pillow_guard(str(p)), Image.open(p) as im:
            check_size(im.size, str(p))  # header only: a 20,000 px bomb is refused before decoding
            check_budget(str(p), *im.size)
            im.seek(0)
            im.draft(im.mode, (MAX_WORK_SIDE, MAX_WORK_SIDE))  # JPEG: decode at a reduced scale directly
            im.load()
            # Larger inputs work (and come out) at MAX_WORK_SIDE: 8 frames at 8000 px would need GBs.
            return ImageOps.exif_transpose(reduce_to_work_size(im).copy())
    except UnidentifiedImageError:
        raise UserError(f"'{p}' is not an image: expected a PNG, WebP or JPEG file") from None
    except Image.DecompressionBombError:
        raise UserError(f"image '{p}' is too large: expected at most {MAX_SIDE} px on each side") from None
    except (OSError, SyntaxError) as e:
        raise UserError(f"image '{p}' could not be decoded ({str(e).splitlines()[0] if str(e) else 'corrupt'})") \
            from None


def has_transparency(im: Image.Image) -> bool:
    """True if the image has an alpha channel (or transparent palette entry) that is not fully opaque."""
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        alpha = im.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255
    return False


def key_border_background(rgb: Image.Image, name: str) -> Image.Image:
    """Make a solid border-coloured background transparent (keying.py's colour-to-alpha), but only
    where it is connected to the border: same-coloured details inside the sticker stay opaque."""
    from scipy import ndimage

    arr = np.asarray(rgb.convert("RGB"))[None]  # (1, H, W, 3) uint8
    info = detect_background(arr)
    if not info.solid:
        raise UserError(f"image '{name}' has no transparency and no uniform background: expected an RGBA "
                        "sticker (PNG/WebP with alpha) or one on a plain-colour background")
    keyed = key_background(arr, info.color)[0]  # (H, W, 4)
    clear = keyed[..., 3] == 0
    labels, _ = ndimage.label(clear)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    background = np.isin(labels, edge[edge > 0])
    if background.all():
        raise UserError(f"image '{name}' is one flat colour: expected a sticker on its background")
    # Soft edges keep the keyed alpha next to the background; everything else is the opaque original.
    near = ndimage.binary_dilation(background, iterations=2)
    out = np.concatenate([arr[0], np.full(clear.shape + (1,), 255, np.uint8)], axis=-1)
    out[near] = keyed[near]
    return Image.fromarray(out, "RGBA")


def to_rgba(im: Image.Image, name: str) -> Image.Image:
    """Straight RGBA: images with transparency as they are, others with their background keyed."""
    check_size(im.size, name)
    if has_transparency(im):
        return im.convert("RGBA")
    return key_border_background(im.convert("RGB"), name)


def prepare_sticker(image: Image.Image, name: str, canvas: int, key: bool = True) -> Sticker:
    """Check, key (if needed and `key`) and fit one input image."""
    if not isinstance(image, Image.Image):
        raise UserError(f"input '{name}' is a {type(image).__name__}: expected a PIL image")
    rgba = to_rgba(image, name) if key else image.convert("RGBA")
    fitted, placement = fit_on_square(rgba, canvas)
    return Sticker(name=name, rgba=rgba, canvas=fitted, placement=placement)
