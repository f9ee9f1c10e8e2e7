"""Check and decode an uploaded sticker entirely in memory: type, size, pixels; one clear error each.

Only what HTTP adds is checked here (declared/sniffed type, bytes, decompression bombs); sizes, keying
and canvas fit are the pipeline's (sampling/preprocess.py), applied by the app right after.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from ..io_limits import InputTooLarge, check_budget, pillow_guard
from .settings import ALLOWED_IMAGE_FORMATS, ServeSettings

# Declared content types that say nothing about the bytes; the bytes are sniffed instead.
_UNINFORMATIVE_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
# Non-standard spellings some clients send for allowed types.
_ALIASES = {"image/jpg", "image/pjpeg", "image/x-png", "image/apng"}


class ApiError(Exception):
    """A request the API refuses: HTTP status + one line naming the bad input and what is expected."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _allowed() -> str:
    return ", ".join(sorted(ALLOWED_IMAGE_FORMATS))


def decode_upload(data: bytes, content_type: str | None, filename: str | None,
                  settings: ServeSettings) -> Image.Image:
    """Upload bytes -> an RGBA PIL image (first frame), downscaled to `max_side`; raises ApiError."""
    name = filename or "upload"
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in _UNINFORMATIVE_TYPES | _ALIASES and declared not in ALLOWED_IMAGE_FORMATS.values():
        raise ApiError(415, f"image '{name}' has type '{declared}'; expected one of {_allowed()}")
    if not data:
        raise ApiError(400, f"image '{name}' is empty; expected a {_allowed()} file")
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, f"image '{name}' is {len(data)} bytes; expected at most "
                            f"{settings.max_upload_bytes}")
    try:
        with pillow_guard(name):
            im = Image.open(io.BytesIO(data))  # reads the chunks before the pixels: text/ICC bombs fail here
    except UnidentifiedImageError:
        raise ApiError(400, f"image '{name}' is not a readable image; expected a {_allowed()} file") from None
    except InputTooLarge as e:
        raise ApiError(413, str(e)) from None
    except Image.DecompressionBombError as e:
        raise ApiError(422, f"image '{name}': {e}") from None
    if im.format not in ALLOWED_IMAGE_FORMATS:
        raise ApiError(415, f"image '{name}' is {im.format}; expected one of {_allowed()}")
    w, h = im.size
    if w * h > settings.max_pixels:
        raise ApiError(422, f"image '{name}' is {w}x{h} pixels; expected at most "
                            f"{settings.max_pixels} pixels")
    try:
        with pillow_guard(name):
            check_budget(name, w, h)
            im.seek(0)
            im.load()
            rgba = ImageOps.exif_transpose(im).convert("RGBA")  # phone JPEGs: honour the orientation tag
    except InputTooLarge as e:
        raise ApiError(413, str(e)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ApiError(400, f"image '{name}' is truncated or corrupt ({str(e).splitlines()[0]}); "
                       f"expected a complete {im.format} file") from None
    if max(w, h) > settings.max_side:
        rgba.thumbnail((settings.max_side, settings.max_side), Image.Resampling.LANCZOS)
    return rgba
