"""Write and read looping RGBA animations: animated WebP, GIF, APNG and WebM (VP9 with alpha).

`write_animation` picks the format from the suffix, always loops forever and writes atomically (a
temp file in the target folder, renamed into place; nothing is left behind on failure).

What each format keeps (checked by tests/test_export_formats.py):
- .webp lossless (`lossless=True`, default): RGBA exactly wherever alpha > 0 (`exact=True`; Pillow's
  decoder returns fully transparent pixels as 0, 0, 0, 0). An animation is encoded with `method` 0: a
  48-frame loop at 256 px (the motion path's default) took 0.44 s against 8.6 s with Pillow's default 4, for
  a third more bytes (measured on one busy core; method 1: 2.0 s, +8%); a still keeps method 4.
  Lossy (`lossless=False`, `quality`=85): colour lossy, alpha exact (`alpha_quality=100`).
- .png (APNG, `disposal=1, blend=0`): RGBA exactly. `colors=N` palettizes (N RGBA entries, see
  palette.py; saved with `disposal=0, blend=0`, as Pillow cannot dispose palette frames).
- .gif: 255 colours + 1-bit alpha, see palette.py (`colors`, `gif_alpha`, `matte`, `dither`); delays are
  multiples of 10 ms, spread so the loop length stays exact.
- .webm: VP9 `yuva420p` via PyAV (`crf`, default 32; `lossless=True` uses VP9 lossless mode, but
  4:2:0 chroma still blurs colour edges; `speed` is libvpx cpu-used, default 4). Alpha is stored in a side
  channel that only the `libvpx-vp9` *decoder* returns; FFmpeg's native `vp9` decoder silently drops it
  (yuv420p). Browsers and Telegram decode it. WebM has no loop flag: players (Telegram, <video loop>) loop it.
Lossy WebP and WebM first fill the colour of fully transparent pixels from their neighbours
(`bleed=False` skips it, for frames already filled with imaging.bleed_colour).
Encoders merge identical consecutive frames into one longer frame (Pillow for WebP/GIF, and APNG
when nothing changes); timing stays exact and `read_frames` expands such frames back.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_path
from ..checks import prepare_output_file
from ..data.animation import read_animation
from ..errors import UserError
from ..io_limits import check_budget
from .imaging import bleed_colour, check_frames
from .palette import quantize_rgba, save_gif
from .retime import check_fps, durations_ms

FORMATS = {".webp": "webp", ".gif": "gif", ".png": "apng", ".apng": "apng", ".webm": "webm"}


def format_of(path: str | Path) -> str:
    """The format name ("webp", "gif", "apng", "webm") for a file suffix; UserError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"'{path}': unsupported suffix {suffix or '(none)'}; expected one of "
                        f"{', '.join(FORMATS)}")
    return FORMATS[suffix]


# Formats that play slower than retime.MAX_FPS: browsers slow GIF delays under 20 ms down.
MAX_FPS_BY_FORMAT = {"gif": 50.0}


def check_format_fps(fmt: str, fps: float) -> float:
    """`fps` (checked by retime.check_fps) unless format `fmt` (a FORMATS value) cannot play it."""
    fps = check_fps(fps)
    limit = MAX_FPS_BY_FORMAT.get(fmt)
    if limit is not None and fps > limit:
        raise UserError(f"fps={fps:g}: {fmt.upper()} plays at most {limit:g} fps (delays under 20 ms are slowed "
                        "down by browsers)")
    return fps


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """atomic.atomic_path for a user's output file: its folder made if missing (checks.py), OS errors
    as one-line UserErrors."""
    prepare_output_file(path)
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as e:
        raise UserError(f"'{path}': write failed ({e.strerror or e})") from None


def _pop_known(opts: dict, fmt: str, allowed: set[str]) -> dict:
    unknown = set(opts) - allowed
    if unknown:
        raise UserError(f"{fmt}: unknown option(s) {', '.join(sorted(unknown))}; expected "
                        f"{', '.join(sorted(allowed)) or 'none'}")
    return opts


def _save_pillow(frames: list[Image.Image], fp: Path, durations: list[int], **kw) -> None:
    if len(frames) == 1:  # a still: no animation chunks
        frames[0].save(fp, **kw)
    else:
        frames[0].save(fp, save_all=True, append_images=frames[1:], duration=durations, loop=0, **kw)


LOSSLESS_ANIMATION_METHOD = 0  # libwebp effort of a lossless animation: 20x faster than 4 (module docstring)


def _write_webp(frames: list[Image.Image], fp: Path, fps: float, lossless: bool, opts: dict) -> None:
    opts = _pop_known(dict(opts), "webp", {"quality", "alpha_quality", "method", "minimize_size",
                                           "allow_mixed", "kmin", "kmax", "bleed"})
    bleed = opts.pop("bleed", True)
    kw = {"method": LOSSLESS_ANIMATION_METHOD if lossless and len(frames) > 1 else 4, **opts}
    if lossless:
        kw.update(lossless=True, exact=True)
    else:
        kw = {"quality": 85, "alpha_quality": 100, **kw, "lossless": False}
        if bleed:  # hidden colour near edges -> no dark fringes
            frames = [bleed_colour(f) for f in frames]
    _save_pillow(frames, fp, durations_ms(len(frames), fps), format="WEBP", **kw)


def _write_apng(frames: list[Image.Image], fp: Path, fps: float, lossless: bool, opts: dict) -> None:
    opts = _pop_known(dict(opts), "apng", {"compress_level", "optimize", "colors", "dither"})
    colors, dither = opts.pop("colors", None), float(opts.pop("dither", 1.0))
    disposal = 1
    if colors is not None:
        frames, disposal = quantize_rgba(frames, int(colors), dither), 0  # blend=0 replaces the region anyway
    _save_pillow(frames, fp, durations_ms(len(frames), fps), format="PNG", disposal=disposal, blend=0, **opts)


def _write_gif(frames: list[Image.Image], fp: Path, fps: float, lossless: bool, opts: dict) -> None:
    # GIF delays are centiseconds, and browsers slow delays under 20 ms down to 100 ms.
    check_format_fps("gif", fps)
    save_gif(frames, fp, durations_ms(len(frames), fps, unit_ms=10), **dict(opts))


def _write_webm(frames: list[Image.Image], fp: Path, fps: float, lossless: bool, opts: dict) -> None:
    import av

    opts = _pop_known(dict(opts), "webm", {"crf", "speed", "bleed"})
    if opts.get("bleed", True):  # hidden colour near edges -> no dark fringes from 4:2:0 chroma
        frames = [bleed_colour(f) for f in frames]
    crf = opts.get("crf")
    options = {"deadline": "good", "cpu-used": str(opts.get("speed", 4)), "row-mt": "1",
               "auto-alt-ref": "0",  # alt-ref frames and the alpha side channel do not mix in libvpx
               "g": str(max(1, len(frames)))}
    if lossless and crf is None:
        options["lossless"] = "1"
    else:
        options.update({"crf": str(int(32 if crf is None else crf)), "b:v": "0"})  # constant quality
    ms = Fraction(1, 1000)
    stamps = np.concatenate([[0], np.cumsum(durations_ms(len(frames), fps))])
    with av.open(str(fp), "w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuva420p"
        stream.time_base = ms
        stream.codec_context.time_base = ms
        stream.options = options
        for img, pts in zip(frames, stamps):
            vf = av.VideoFrame.from_ndarray(np.asarray(img), format="rgba").reformat(format="yuva420p")
            vf.pts, vf.time_base = int(pts), ms
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


_WRITERS = {"webp": _write_webp, "apng": _write_apng, "gif": _write_gif, "webm": _write_webm}


def write_animation(frames: Sequence[Image.Image], path: str | Path, fps: float, lossless: bool = True,
                    **opts) -> Path:
    """Write RGBA frames as a looping animation, format from the suffix (.webp .gif .png .webm); atomic."""
    path = Path(path)
    fmt = format_of(path)
    frames = check_frames(frames)
    fps = check_fps(fps)
    with atomic_output(path) as tmp:
        _WRITERS[fmt](frames, tmp, fps, lossless, opts)
    return path


def animation_bytes(frames: Sequence[Image.Image], suffix: str, fps: float, lossless: bool = True, **opts) -> bytes:
    """The bytes `write_animation` would write for a file ending in `suffix` (e.g. for an HTTP reply)."""
    with tempfile.TemporaryDirectory(prefix="stickers-") as tmp:
        return write_animation(frames, Path(tmp) / f"animation{suffix}", fps, lossless, **opts).read_bytes()


def repeat_counts(durations: list[int]) -> list[int]:
    """How many constant-rate frames each decoded frame stands for (encoders merge identical repeats)."""
    positive = [d for d in durations if d > 0]
    if not positive:
        return [1] * len(durations)
    base = min(positive)
    counts = []
    for d in durations:
        k = round(d / base)
        counts.append(k if k >= 2 and abs(d - k * base) <= 0.3 * base else 1)
    return counts


def read_frames(path: str | Path) -> tuple[list[Image.Image], float]:
    """Read any animation back as (RGBA frames at a constant rate, fps); a still gives fps 0.0."""
    anim = read_animation(path)
    total_ms = sum(anim.durations_ms)
    counts = repeat_counts(anim.durations_ms)
    h, w = anim.frames.shape[1:3]
    check_budget(str(path), w, h, sum(counts))  # long-held frames repeat at the constant rate
    frames = [Image.fromarray(f, "RGBA") for f, c in zip(anim.frames, counts) for _ in range(c)]
    fps = 1000.0 * len(frames) / total_ms if total_ms > 0 else 0.0
    return frames, fps
