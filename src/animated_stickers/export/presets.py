"""Messenger presets: size, timing and byte limits as data, and an exporter that proves it met them.

`export_preset` fits the frames to the preset's canvas (Lanczos on premultiplied alpha), retimes
them (motion-compensated in-betweens up to the preset's fps) and encodes candidates in a temp
folder: for each frame rate, highest first, it binary-searches the preset's quality ladder (best
first) for the best quality under the byte budget, down to the preset's quality floor; if that is
still too big it drops to the next frame rate (the source rate, and the lower rates a preset
allows for long loops, `fewer_frames`, may use the whole ladder). The chosen file is read back and
checked against every limit before it is moved into place; if nothing fits, it fails with one line
and writes nothing.

Long loops (the motion path: 48 frames at 24 fps, up to 90 at 30 fps): 48 frames of a sticker whose whole
body moves (a bounce) at 512x512 are 640-790 KB of lossy WebP at quality 50-80 with exact alpha, over
WhatsApp's 500 KB, and 90 frames at 30 fps do not fit even with lossy alpha; so the WhatsApp ladder ends
with lossy-alpha steps and may drop every other or every third frame (24 fps -> 12 or 8, 30 fps -> 15 or
10). Encoder speed (one busy core, 48 frames at 512 px, lossy WebP q80): method 4 (Pillow's default)
5.8 s, method 2 3.5 s for +3% bytes, method 0 1.7 s for +38%; the animated WebP ladder uses method 2,
since one search may encode 4-6 candidates.

Limits (sources: core.telegram.org/stickers; WhatsApp/stickers StickerPackValidator.java, where
1 KB = 1024 bytes; Slack and Discord help pages):
- telegram: video sticker, WebM VP9, one side exactly 512 px and the other <= 512, <= 3 s,
  <= 30 fps, <= 256 KB, no audio stream.
- telegram-static: static sticker, WebP, one side 512 px, <= 512 KB.
- whatsapp: animated sticker, WebP exactly 512x512, <= 500 KB, frames >= 8 ms, loop <= 10 s.
  WhatsApp shows the first frame when a sticker is not playing, so the loop is rotated to start
  at the conditioning frame (the user's image).
- whatsapp-static: WebP 512x512, <= 100 KB.
- gif: a chat GIF for Discord/Slack messages: 256 px long side, <= 256 KB (Discord's emoji
  upload limit, so it also works as a Discord emoji).
- slack-emoji: GIF 128x128, <= 128 KB (Slack custom emoji; 128 KB = 131072 bytes).
- discord-sticker: APNG exactly 320x320, <= 512 KB.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from ..checks import prepare_output_file
from ..config import cond_index
from ..data.animation import read_animation
from ..errors import UserError
from .formats import atomic_output, format_of, repeat_counts, write_animation
from .imaging import bleed_colour, check_frames, fit_frames
from .retime import MIN_FPS, RETIME_MODES, check_fps, pingpong_frames, retime

KB = 1024


@dataclass(frozen=True)
class Preset:
    """One target platform: canvas, limits, and the encoder settings to try (best first)."""

    name: str
    summary: str
    suffix: str  # ".webm" | ".webp" | ".gif" | ".png" (APNG)
    long_side: int  # the longer side is exactly this many pixels
    max_bytes: int
    square: bool = False  # pad (transparent, centred) to long_side x long_side
    animated: bool = True  # False: write one still frame (the conditioning frame)
    max_duration_s: float | None = None
    max_fps: float | None = None
    min_frame_ms: int | None = None
    fps_steps: tuple[float, ...] = (24.0, 16.0, 12.0)  # retime targets tried if >= 1.25x the source rate
    fewer_frames: tuple[int, ...] = ()  # the source rate / these (every 2nd, 3rd frame) when nothing else fits
    quality_steps: tuple[dict, ...] = ({},)  # write_animation options, best quality first
    quality_floor: int | None = None  # lowest step index tried before dropping fps (the last fps tries all)
    poster_first: bool = False  # rotate the loop so the conditioning frame is shown first


_WEBM_CRF = tuple({"lossless": False, "crf": c} for c in (24, 30, 36, 42, 48, 54, 63))
_WEBP_LOSSY = tuple({"lossless": False, "quality": q} for q in (90, 80, 70, 60, 50, 40, 30))
# Animated WebP: method 2 (see above), then lossy alpha as the last resort of a long loop.
_WEBP_ANIMATED = (tuple({"lossless": False, "quality": q, "method": 2} for q in (90, 80, 70, 60, 50, 40, 30))
                  + tuple({"lossless": False, "quality": 30, "alpha_quality": a, "method": 2} for a in (70, 40)))
_GIF = ({"colors": 255, "dither": 1.0}, {"colors": 255, "dither": 0.0}, {"colors": 128, "dither": 0.0},
        {"colors": 64, "dither": 0.0}, {"colors": 32, "dither": 0.0})
_APNG = ({},) + tuple({"colors": c} for c in (256, 128, 64))  # lossless RGBA, then shared RGBA palettes

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("telegram", "Telegram video sticker: WebM VP9 + alpha, 512 px long side, <= 3 s, <= 30 fps, <= 256 KB",
           ".webm", 512, 256 * KB, max_duration_s=3.0, max_fps=30.0, quality_steps=_WEBM_CRF, quality_floor=3,
           fewer_frames=(2,)),
    Preset("telegram-static", "Telegram static sticker: WebP, 512 px long side, <= 512 KB",
           ".webp", 512, 512 * KB, animated=False, quality_steps=({"lossless": True},) + _WEBP_LOSSY),
    # No lossless step: a 512x512 lossless loop is ~10x over 500 KB, and the costliest encode to try.
    Preset("whatsapp", "WhatsApp animated sticker: WebP 512x512, <= 500 KB, frames >= 8 ms, <= 10 s",
           ".webp", 512, 500 * KB, square=True, max_duration_s=10.0, min_frame_ms=8,
           quality_steps=_WEBP_ANIMATED, quality_floor=3, poster_first=True, fewer_frames=(2, 3)),
    Preset("whatsapp-static", "WhatsApp static sticker: WebP 512x512, <= 100 KB",
           ".webp", 512, 100 * KB, square=True, animated=False, quality_steps=({"lossless": True},) + _WEBP_LOSSY),
    Preset("gif", "Chat GIF for Discord/Slack: 256 px long side, <= 256 KB (also a valid Discord emoji)",
           ".gif", 256, 256 * KB, max_fps=50.0, fps_steps=(25.0, 20.0, 12.5), quality_steps=_GIF, quality_floor=2),
    Preset("slack-emoji", "Slack custom emoji: GIF 128x128, <= 128 KB",
           ".gif", 128, 128 * KB, square=True, max_fps=50.0, fps_steps=(25.0, 20.0, 12.5), quality_steps=_GIF,
           quality_floor=2),
    Preset("discord-sticker", "Discord sticker: APNG 320x320, <= 512 KB",
           ".png", 320, 512 * KB, square=True, fps_steps=(24.0, 16.0, 12.0), quality_steps=_APNG, quality_floor=2),
)}


def get_preset(name: str | Preset) -> Preset:
    """The preset called `name` (or `name` itself if it is a Preset); UserError lists the choices."""
    if isinstance(name, Preset):
        return name
    if name not in PRESETS:
        raise UserError(f"preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass
class ExportReport:
    """What was written, as measured by reading the file back."""

    path: Path
    preset: str
    format: str
    bytes: int
    max_bytes: int
    size: tuple[int, int]
    frames: int  # frames written; a reader may see fewer where an encoder merged identical neighbours
    duration_s: float
    fps: float
    options: dict  # the write_animation options that were used (the quality step)
    attempts: list[dict] = field(default_factory=list)  # every step tried: fps, options, bytes (skipped: predicted)
    cond_frame: int = 0  # where the conditioning frame is in the file (moved by poster_first and retiming)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items()) or "defaults"
        return (f"{self.path}: {self.preset} {self.format} {self.size[0]}x{self.size[1]}, {self.frames} frames, "
                f"{self.duration_s:.2f} s @ {self.fps:.3g} fps, "
                f"{self.bytes / KB:.1f} KB of {self.max_bytes / KB:.0f} KB "
                f"({opts}; {sum(not a.get('skipped') for a in self.attempts)} encode(s))")

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def _fps_plan(preset: Preset, n: int, src_fps: float, interpolate: bool = True) -> list[float]:
    """Frame rates to try, highest first: preset steps above the source rate, then the source rate."""
    limit = preset.max_fps or float("inf")
    if preset.min_frame_ms:
        limit = min(limit, 1000.0 / preset.min_frame_ms)
    loop_s = n / src_fps
    if preset.max_duration_s is not None and loop_s > preset.max_duration_s + 1e-9:
        raise UserError(f"{preset.name}: {n} frames at {src_fps:g} fps last {loop_s:.2f} s, but {preset.name} allows "
                        f"at most {preset.max_duration_s:g} s; use fps >= {n / preset.max_duration_s:.3g}")
    # Interpolate only for a real gain: a small rate change would just blur every frame.
    steps = preset.fps_steps if interpolate else ()  # held repeats add no motion (encoders merge them)
    source = min(src_fps, limit)
    plan = [f for f in steps if 1.25 * src_fps <= f <= limit] + [source]
    plan += [source / k for k in preset.fewer_frames if source / k >= MIN_FPS]  # the last resort of a long loop
    return sorted(set(plan), reverse=True)


def _check_file(path: Path, preset: Preset, frames: int, fps: float) -> dict:
    """Read the file back and check every limit of `preset`; returns measurements or raises UserError."""
    anim = read_animation(path)
    nbytes = path.stat().st_size
    h, w = anim.frames.shape[1:3]
    duration_s = anim.duration_s
    problems = []
    if nbytes > preset.max_bytes:
        problems.append(f"{nbytes} bytes > {preset.max_bytes}")
    if max(w, h) != preset.long_side or (preset.square and w != h):
        problems.append(f"size {w}x{h}")
    # Encoders may merge identical neighbours into one longer frame: then fewer frames come back,
    # and the frames and the timeline must still add up.
    expanded = sum(repeat_counts(anim.durations_ms))
    if anim.num_frames > frames or (expanded != frames and anim.num_frames == frames):
        problems.append(f"{anim.num_frames} frames read back, {frames} written")
    if preset.animated and frames > 1:
        if abs(duration_s - frames / fps) > max(0.011, 0.01 * frames / fps):
            problems.append(f"duration {duration_s:.3f} s, expected {frames / fps:.3f} s")
        if preset.max_duration_s is not None and duration_s > preset.max_duration_s + 1e-3:
            problems.append(f"duration {duration_s:.3f} s")
        if preset.max_fps is not None and frames / duration_s > preset.max_fps + 1e-3:
            problems.append(f"{frames / duration_s:.3f} fps")
        if preset.min_frame_ms is not None and min(anim.durations_ms) < preset.min_frame_ms:
            problems.append(f"a frame lasts {min(anim.durations_ms)} ms")
    fmt = format_of(path.with_suffix(preset.suffix))
    if fmt == "webm":
        import av

        with av.open(str(path)) as c:
            v = c.streams.video[0]
            if c.streams.audio or v.codec_context.name != "vp9" or v.metadata.get("alpha_mode") != "1":
                problems.append("not VP9 video-only with alpha")
    else:
        with Image.open(path) as im:
            if preset.animated and frames > 1 and im.info.get("loop") != 0:
                problems.append("does not loop forever")
            if fmt == "gif" and "transparency" not in im.info:
                problems.append("no transparent colour")
    if problems:
        raise UserError(f"{preset.name}: the encoded file breaks the spec ({'; '.join(problems)}); nothing written")
    animated = preset.animated and duration_s > 0
    return {"bytes": nbytes, "size": (int(w), int(h)), "frames": frames,
            "duration_s": duration_s if animated else 0.0, "fps": frames / duration_s if animated else 0.0}


def _prepare(frames: list[Image.Image], preset: Preset, cond_frame: int | None) -> tuple[list[Image.Image], int]:
    """Still or rotated loop, fitted to the preset canvas, and where the conditioning frame is in it (it defaults
    to config.cond_index, the video path's rule; the motion path passes its own, 0)."""
    cond = min(cond_frame, len(frames) - 1) if cond_frame is not None else cond_index(len(frames))
    if not preset.animated:
        frames, cond = [frames[cond]], 0
    elif preset.poster_first and cond:
        frames, cond = frames[cond:] + frames[:cond], 0  # same loop, starting at the conditioning frame
    return fit_frames(frames, preset.long_side, square=preset.square), cond


def export_preset(frames: Sequence[Image.Image], fps: float, preset: str | Preset, out: str | Path,
                  retime_mode: str = "flow", pingpong: bool = False, cond_frame: int | None = None,
                  progress: Callable[[str], None] | None = None) -> ExportReport:
    """Export a loop of RGBA `frames` shown at `fps` for `preset` to `out`; checked, atomic, within budget."""
    preset = get_preset(preset)
    frames = check_frames(frames)
    fps = check_fps(fps)
    out = Path(out)
    if out.suffix == "":
        out = out.with_suffix(preset.suffix)
    if out.suffix.lower() != preset.suffix:
        raise UserError(f"'{out}': preset {preset.name} writes {preset.suffix} files; use that suffix")
    prepare_output_file(out)  # fail before encoding, not after
    if retime_mode not in RETIME_MODES:
        raise UserError(f"retime mode {retime_mode!r}: expected one of {', '.join(RETIME_MODES)}")
    base, cond = _prepare(frames, preset, cond_frame)
    if pingpong and preset.animated:  # NOT a real loop (see retime.py); it nearly doubles the length
        base = pingpong_frames(base)
    plan = _fps_plan(preset, len(base), fps, retime_mode != "hold") if preset.animated else [fps]
    attempts: list[dict] = []
    steps = preset.quality_steps
    flow_cache: dict = {}  # optical flow per frame pair, shared by every frame rate tried

    with tempfile.TemporaryDirectory(prefix="stickers-export-") as tmp:
        per_frame: dict[int, float] = {}  # smallest bytes per frame seen for each quality step

        def encode(seq: list[Image.Image], bled: list, rate: float, i: int) -> tuple[Path | None, int]:
            predicted = per_frame.get(i, 0.0) * len(seq)
            if predicted > 1.25 * preset.max_bytes:  # fewer frames rarely cost fewer bytes each: skip
                attempts.append({"fps": round(rate, 4), "options": dict(steps[i]), "bytes": round(predicted),
                                 "skipped": True})
                return None, round(predicted)
            path = Path(tmp) / f"try{len(attempts)}{preset.suffix}"
            if progress:
                progress(f"{preset.name}: {rate:.3g} fps, {steps[i] or 'defaults'}")
            if preset.suffix in (".webm", ".webp") and not steps[i].get("lossless", False):
                if not bled:  # fill hidden colour once per frame rate, not once per quality step
                    bled.extend(bleed_colour(f) for f in seq)
                write_animation(bled, path, rate, **steps[i], bleed=False)
            else:
                write_animation(seq, path, rate, **steps[i])
            size = path.stat().st_size
            per_frame[i] = min(per_frame.get(i, float("inf")), size / len(seq))
            attempts.append({"fps": round(rate, 4), "options": dict(steps[i]), "bytes": size})
            return path, size

        chosen = None
        floor = len(steps) - 1 if preset.quality_floor is None else min(preset.quality_floor, len(steps) - 1)
        for target in plan:
            seq, rate = retime(base, fps, target, retime_mode, cache=flow_cache) if preset.animated else (base, fps)
            n_steps = len(steps) if target <= fps + 1e-9 else floor + 1  # the source rate and below: every step
            bled: list[Image.Image] = []  # filled by the first lossy encode at this rate
            best = _search(lambda i, seq=seq, bled=bled, rate=rate: encode(seq, bled, rate, i), n_steps,
                           preset.max_bytes)
            if best is not None:
                chosen = (best, seq, rate)
                break
        if chosen is None:
            tried = min(a["bytes"] for a in attempts if not a.get("skipped"))
            raise UserError(f"{preset.name}: cannot fit {preset.max_bytes / KB:.0f} KB "
                            f"(smallest try {tried / KB:.0f} KB "
                            f"at {plan[-1]:.3g} fps, lowest quality); use fewer frames, a lower fps or a simpler image")
        (path, i), seq, rate = chosen
        measured = _check_file(path, preset, len(seq), rate)
        with atomic_output(out) as final:
            shutil.copyfile(path, final)
    # Retiming keeps the loop's length: source frame c is at c * m / n of m frames (the nearest, if between two).
    cond = round(cond * len(seq) / len(base)) % len(seq)
    return ExportReport(path=out, preset=preset.name, format=format_of(out), max_bytes=preset.max_bytes,
                        options=dict(steps[i]), attempts=attempts, cond_frame=cond, **measured)


def _search(encode: Callable[[int], tuple[Path | None, int]], n: int, budget: int) -> tuple[Path, int] | None:
    """Best (lowest) step index whose file fits `budget`: try the best, then the worst, then bisect."""
    path, size = encode(0)
    if size <= budget:
        return path, 0
    if n == 1:
        return None
    path, size = encode(n - 1)
    if size > budget:
        return None
    lo, hi, best = 0, n - 1, (path, n - 1)  # step lo is too big, step hi fits
    while hi - lo > 1:
        mid = (lo + hi) // 2
        path, size = encode(mid)
        if size <= budget:
            hi, best = mid, (path, mid)
        else:
            lo = mid
    return best
