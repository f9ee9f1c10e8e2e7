"""Decode budgets for untrusted images and animations: the one place every reader checks them.

A 959-byte GIF can declare 40 frames on a 4000x4000 screen (2.5 GB as RGBA) and a 74 KB PNG can carry
a zTXt/iCCP chunk that inflates to hundreds of MB. Pillow knows width, height and frame count from
the headers, before decoding any pixels, so readers call `check_budget` first and wrap Pillow in
`pillow_guard`, which turns its bomb errors into `InputTooLarge` (HTTP 413, CLI `error:` + exit 2).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from PIL import Image

from .errors import UserError

# frames x width x height decoded from one file: 64 Mpx = 256 MB as RGBA uint8, which keeps a reader
# plus its callers' copies well under 1.5 GB (e.g. 250 frames of 512x512, or one 8192x8192 still).
MAX_DECODE_PIXELS = 64 * 2**20
# Stills larger than this on the long side are scaled down right after decoding: every later step
# (keying, 8 generated frames restored to the input size, encoding) costs memory per output pixel.
MAX_WORK_SIDE = 2048


class InputTooLarge(UserError):
    """An image or animation over the decode budget (or a decompression bomb); names the input."""


def check_budget(name: str, width: int, height: int, frames: int = 1) -> None:
    """InputTooLarge unless frames x width x height is within MAX_DECODE_PIXELS (call before decoding)."""
    total = int(width) * int(height) * max(1, int(frames))
    if total > MAX_DECODE_PIXELS:
        what = f"{width}x{height} px" + (f" x {frames} frames" if frames > 1 else "")
        raise InputTooLarge(f"'{name}' is {what} = {total:,} pixels to decode: expected at most "
                            f"{MAX_DECODE_PIXELS:,} (frames x width x height)")


@contextlib.contextmanager
def pillow_guard(name: str) -> Iterator[None]:
    """Pillow's bomb guards as InputTooLarge: oversized text/ICC metadata chunks ("Decompressed data too
    large") and the DecompressionBombWarning (over ~89 Mpx). DecompressionBombError (twice that) is left
    to the caller, which knows the size limit to name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombWarning as e:
        raise InputTooLarge(f"'{name}' is too large to decode ({e})") from None
    except ValueError as e:
        text = str(e).lower()
        if "decompressed data too large" not in text and "too much memory used in text chunks" not in text:
            raise
        raise InputTooLarge(f"'{name}' has a metadata chunk (text or ICC profile) that inflates past Pillow's "
                            "limit: expected an ordinary image file") from None


def reduce_to_work_size(im: Image.Image) -> Image.Image:
    """`im` itself, or a copy scaled down (Lanczos, aspect kept) so its long side is MAX_WORK_SIDE."""
    if max(im.size) <= MAX_WORK_SIDE:
        return im
    out = im.copy()
    out.thumbnail((MAX_WORK_SIDE, MAX_WORK_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return out
