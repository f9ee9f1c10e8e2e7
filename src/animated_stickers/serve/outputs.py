"""Encode frames into reply bytes through the export area, in a private temp dir that is always removed."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from PIL import Image

from ..errors import UserError
from .settings import OUTPUT_FORMATS
from .uploads import ApiError

SUFFIX_MIME = {suffix: mime for suffix, mime in OUTPUT_FORMATS.values()}


def preset_names() -> dict[str, str]:
    """Messenger presets of the export area: name -> one-line summary."""
    from ..export.presets import PRESETS

    return {name: p.summary for name, p in PRESETS.items()}


def encode_animation(frames: list[Image.Image], fmt: str, fps: float) -> tuple[bytes, str, str]:
    """RGBA frames -> (file bytes, MIME type, suffix) in `fmt` (webp | gif | png | webm), looping forever."""
    from ..export.formats import write_animation

    suffix, mime = OUTPUT_FORMATS[fmt]
    with tempfile.TemporaryDirectory(prefix="stickers-serve-") as tmp:
        path = write_animation(frames, Path(tmp) / f"sticker{suffix}", fps=fps)
        return Path(path).read_bytes(), mime, suffix


def encode_preset(frames: list[Image.Image], preset: str, fps: float,
                  cond_frame: int) -> tuple[bytes, str, str]:
    """Frames -> (bytes, MIME, suffix) meeting a messenger preset's limits (checked by the exporter)."""
    from ..export.presets import export_preset, get_preset

    suffix = get_preset(preset).suffix
    with tempfile.TemporaryDirectory(prefix="stickers-serve-") as tmp:
        try:
            report = export_preset(frames, fps, preset, Path(tmp) / f"sticker{suffix}", cond_frame=cond_frame)
        except UserError as e:  # e.g. cannot fit the byte budget: the request asked for the impossible
            raise ApiError(422, f"preset '{preset}': {e}") from None
        return Path(report.path).read_bytes(), SUFFIX_MIME[suffix], suffix


def encode_still(image: Image.Image) -> bytes:
    """One RGBA image -> PNG bytes (in memory)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
