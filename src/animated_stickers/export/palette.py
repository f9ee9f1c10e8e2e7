"""Palette quantization for GIF and APNG: one global palette per animation, ordered dithering.

GIF has 256 palette colours and on/off transparency. What we do (and why):
- One palette for all frames (median cut over the visible pixels of every frame), so colours do
  not shift from frame to frame.
- Index 255 is reserved for "transparent" and never used for colour; every frame is saved with
  `transparency=255, disposal=2` so each frame clears to transparent (no ghost trails).
- Soft alpha edges: by default alpha >= 128 is visible and keeps its *straight* colour, so there
  is no halo on any background (edges are 1-bit, i.e. slightly jagged). `matte=(r, g, b)` blends
  edge pixels over that colour first (smooth on that background, a halo on others).
  `alpha="dither"` instead turns partial alpha into an ordered (Bayer) pattern.
- Colour dithering is ordered (Bayer), not error diffusion: the same pixel gets the same index in
  every frame, so still regions do not shimmer in the animation.

APNG can be palettized too (`quantize_rgba`): 256 RGBA entries with real partial alpha (tRNS),
about a quarter of the bytes of RGBA, used only when a size budget needs it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..errors import UserError

TRANSPARENT_INDEX = 255
ALPHA_MODES = ("threshold", "dither")
_BAYER2 = np.array([[0, 2], [3, 1]])


def bayer(h: int, w: int) -> np.ndarray:
    """An (h, w) tiling of the 8x8 Bayer matrix, thresholds in (0, 1)."""
    m = _BAYER2
    for _ in range(2):  # 2x2 -> 4x4 -> 8x8
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    m = (m + 0.5) / m.size
    return np.tile(m, (h // 8 + 1, w // 8 + 1))[:h, :w].astype(np.float32)


def _palette(samples: np.ndarray, colors: int) -> np.ndarray:
    """Median-cut palette (k, 3) uint8 for (N, 3) uint8 samples, k <= colors."""
    if len(samples) == 0:
        return np.zeros((1, 3), np.uint8)
    step = max(1, len(samples) // 262_144)  # a deterministic subsample keeps this fast
    img = Image.fromarray(np.ascontiguousarray(samples[::step]).reshape(-1, 1, 3), "RGB")
    q = img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    used = int(np.asarray(q).max()) + 1
    return np.array(q.getpalette()[: 3 * used], np.uint8).reshape(-1, 3)


def _dither_offset(h: int, w: int, colors: int, strength: float) -> np.ndarray:
    """(h, w, 1) Bayer offsets scaled to about half the spacing of a `colors`-entry palette."""
    spread = strength * 0.5 * 255.0 / max(colors, 1) ** (1 / 3)
    return ((bayer(h, w) - 0.5) * spread)[..., None].astype(np.float32)


def quantize_frames(frames: Sequence[Image.Image], colors: int = 255, alpha: str = "threshold",
                    matte: tuple[int, int, int] | None = None, dither: float = 1.0) -> list[Image.Image]:
    """RGBA frames -> "P" frames sharing one palette; index 255 marks transparent pixels."""
    if alpha not in ALPHA_MODES:
        raise UserError(f"gif alpha={alpha!r}: expected one of {', '.join(ALPHA_MODES)}")
    if not 2 <= colors <= 255:
        raise UserError(f"gif colors={colors}: expected 2..255 (index 255 is reserved for transparency)")
    arr = np.stack([np.asarray(f.convert("RGBA")) for f in frames])  # (T, H, W, 4) uint8
    _, h, w, _ = arr.shape
    a = arr[..., 3].astype(np.float32) / 255.0
    threshold = bayer(h, w) if alpha == "dither" else 0.5
    visible = a >= threshold  # (T, H, W)
    rgb = arr[..., :3].astype(np.float32)
    if matte is not None:
        rgb = rgb * a[..., None] + np.asarray(matte, np.float32) * (1.0 - a[..., None])
    pal = _palette(np.round(rgb[visible]).astype(np.uint8), colors)
    k = len(pal)
    pal_img = Image.new("P", (1, 1))
    pal_img.putpalette(np.concatenate([pal, np.repeat(pal[:1], 256 - k, 0)]).ravel().tolist())
    # Ordered dither: offset each pixel by its Bayer threshold, scaled to the palette's spacing.
    offset = _dither_offset(h, w, k, dither)
    lut = np.arange(256, dtype=np.uint8)
    lut[k:] = 0  # padding entries duplicate entry 0; never let them (or 255) carry colour
    out = []
    for t in range(len(arr)):
        src = np.clip(np.round(rgb[t] + offset), 0, 255).astype(np.uint8)
        idx = np.asarray(Image.fromarray(src, "RGB").quantize(palette=pal_img, dither=Image.Dither.NONE))
        idx = lut[idx]
        idx[~visible[t]] = TRANSPARENT_INDEX
        frame = Image.fromarray(idx, "P")
        frame.putpalette(pal_img.getpalette())
        out.append(frame)
    return out


def quantize_rgba(frames: Sequence[Image.Image], colors: int = 256, dither: float = 1.0) -> list[Image.Image]:
    """RGBA frames -> "P" frames sharing one RGBA palette (tRNS alpha), for APNG.

    All frames are quantized as one tall mosaic (Pillow's fast octree, the method that handles
    alpha), so they share a palette; fully transparent pixels stay exactly transparent.
    """
    if not 2 <= colors <= 256:
        raise UserError(f"apng colors={colors}: expected 2..256")
    arr = np.stack([np.asarray(f.convert("RGBA")) for f in frames]).astype(np.float32)  # (T, H, W, 4)
    t, h, w, _ = arr.shape
    arr[..., :3] += _dither_offset(h, w, colors, dither)
    arr[arr[..., 3] == 0] = 0.0  # one exact "transparent" colour for the octree
    mosaic = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8).reshape(t * h, w, 4), "RGBA")
    q = mosaic.quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    pal = q.getpalette(rawmode="RGBA")
    idx = np.asarray(q).reshape(t, h, w)
    out = []
    for k in range(t):
        frame = Image.fromarray(np.ascontiguousarray(idx[k]), "P")
        frame.putpalette(pal, rawmode="RGBA")
        out.append(frame)
    return out


def save_gif(frames: Sequence[Image.Image], fp, durations: list[int], **opts) -> None:
    """Write RGBA frames as a looping GIF to a path or file object (durations in ms, multiples of 10)."""
    quant = quantize_frames(frames, colors=int(opts.pop("colors", 255)), alpha=opts.pop("gif_alpha", "threshold"),
                            matte=opts.pop("matte", None), dither=float(opts.pop("dither", 1.0)))
    if opts:
        raise UserError(f"gif: unknown option(s) {', '.join(sorted(opts))}; expected colors, gif_alpha, matte, dither")
    kw = {"format": "GIF", "transparency": TRANSPARENT_INDEX, "disposal": 2, "optimize": False}
    if len(quant) == 1:
        quant[0].save(fp, **kw)
        return
    quant[0].save(fp, save_all=True, append_images=quant[1:], duration=durations, loop=0, **kw)
