"""Input stickers and prompts: checks, background keying, fit to the model canvas and back.

A sticker of any size is resized (aspect kept, Lanczos; Pillow resizes RGBA premultiplied, so hidden
colours of transparent pixels do not bleed) so its long side fills the square canvas, centred on
transparency. `Placement` remembers where it went, and `restore` maps generated frames back to the
input's own size. Images without transparency get their background keyed out when the border is one
uniform colour; otherwise they are refused with one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.keying import detect_background
from ..data.keying import key_background as key_colour
from ..errors import UserError

MIN_SIDE = 16
MAX_SIDE = 8192
MAX_PROMPT_CHARS = 500


@dataclass(frozen=True)
class Placement:
    """Where a sticker sits on the square canvas: box (left, top, width, height), original (w, h)."""

    original_size: tuple[int, int]
    box: tuple[int, int, int, int]
    canvas: int


@dataclass
class Sticker:
    """A prepared input: the straight RGBA sticker at its own size and its canvas version."""

    name: str
    rgba: Image.Image  # original size, RGBA (keyed if it had no alpha)
    canvas: Image.Image  # canvas x canvas RGBA
    placement: Placement


def validate_prompt(prompt: str, what: str = "prompt") -> str:
    """The stripped prompt, or UserError if it is empty or longer than MAX_PROMPT_CHARS."""
    text = (prompt or "").strip()
    if not text:
        raise UserError(f"{what} is empty: expected a short description of the motion, e.g. 'waving hello'")
    if len(text) > MAX_PROMPT_CHARS:
        raise UserError(f"{what} has {len(text)} characters: expected at most {MAX_PROMPT_CHARS}")
    return text


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
        with Image.open(p) as im:
            check_size(im.size, str(p))  # header only: a 20,000 px bomb is refused before decoding
            im.seek(0)
            im.load()
            return ImageOps.exif_transpose(im.copy())
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


def key_background(rgb: Image.Image, name: str) -> Image.Image:
    """Make a solid border-coloured background transparent (data/keying.py's colour-to-alpha), but only
    where it is connected to the border: same-coloured details inside the sticker stay opaque."""
    from scipy import ndimage

    arr = np.asarray(rgb.convert("RGB"))[None]  # (1, H, W, 3) uint8
    info = detect_background(arr)
    if not info.solid:
        raise UserError(f"image '{name}' has no transparency and no uniform background: expected an RGBA "
                        "sticker (PNG/WebP with alpha) or one on a plain-colour background")
    keyed = key_colour(arr, info.color)[0]  # (H, W, 4)
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
    return key_background(im.convert("RGB"), name)


def fit_to_canvas(rgba: Image.Image, canvas: int) -> tuple[Image.Image, Placement]:
    """Resize (aspect kept) so the long side is `canvas`, centre on a transparent square."""
    w, h = rgba.size
    scale = canvas / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = rgba if (nw, nh) == (w, h) else rgba.resize((nw, nh), Image.Resampling.LANCZOS)
    left, top = (canvas - nw) // 2, (canvas - nh) // 2
    out = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    out.paste(resized, (left, top))
    return out, Placement(original_size=(w, h), box=(left, top, nw, nh), canvas=canvas)


def restore(frame: Image.Image, placement: Placement) -> Image.Image:
    """Crop a canvas frame to the sticker's box and resize it back to the original size."""
    if frame.size != (placement.canvas, placement.canvas):
        raise ValueError(f"frame size {frame.size}: expected the {placement.canvas} px canvas")
    left, top, w, h = placement.box
    crop = frame.convert("RGBA").crop((left, top, left + w, top + h))
    return crop if crop.size == placement.original_size else crop.resize(placement.original_size,
                                                                          Image.Resampling.LANCZOS)


def prepare_sticker(image: Image.Image, name: str, canvas: int, key: bool = True) -> Sticker:
    """Check, key (if needed and `key`) and fit one input image."""
    if not isinstance(image, Image.Image):
        raise UserError(f"input '{name}' is a {type(image).__name__}: expected a PIL image")
    rgba = to_rgba(image, name) if key else image.convert("RGBA")
    fitted, placement = fit_to_canvas(rgba, canvas)
    return Sticker(name=name, rgba=rgba, canvas=fitted, placement=placement)
