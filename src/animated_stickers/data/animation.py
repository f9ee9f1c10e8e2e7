"""Read any animation (or still) into RGBA frames: animated WebP/GIF/APNG via Pillow, videos via PyAV.

Pillow is the only decoder of animated WebP here (ffmpeg/PyAV cannot), and reports a frame's
duration only after seek()+load(). Frames come back straight RGBA uint8 (T, H, W, 4).
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import UserError
from ..io_limits import InputTooLarge, check_budget, pillow_guard

IMAGE_SUFFIXES = {".webp", ".gif", ".png", ".apng", ".jpg", ".jpeg"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi"}


class AnimationReadError(UserError):
    """An unreadable or truncated animation file; the message names the file."""


@dataclass
class Animation:
    """Straight-RGBA frames (T, H, W, 4) uint8 and per-frame durations in milliseconds."""

    frames: np.ndarray
    durations_ms: list[int]

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def fps(self) -> float:
        total = sum(self.durations_ms)
        return 1000.0 * self.num_frames / total if total > 0 else 0.0

    @property
    def duration_s(self) -> float:
        return sum(self.durations_ms) / 1000.0


def _name(path: Path | BinaryIO) -> str:
    return str(path) if isinstance(path, (str, Path)) else "<bytes>"


def _read_pillow(path: Path | BinaryIO, max_frames: int | None, keep: set[int] | None = None) -> Animation:
    frames, durations = [], []
    try:
        with pillow_guard(_name(path)), Image.open(path) as im:
            n = getattr(im, "n_frames", 1)  # read from the frame headers, no pixels decoded yet
            count = n if max_frames is None else min(n, max_frames)
            check_budget(_name(path), *im.size, count)  # every frame is decoded at the full screen size
            for i in range(count):
                im.seek(i)
                im.load()
                durations.append(int(im.info.get("duration", 0) or 0))
                if keep is None or i in keep:
                    frames.append(np.asarray(im.convert("RGBA")))
    except InputTooLarge as e:
        raise AnimationReadError(str(e)) from None
    return Animation(np.stack(frames), durations)


def _read_pyav(path: Path | BinaryIO, max_frames: int | None) -> Animation:
    import av

    frames, times = [], []
    with av.open(path if isinstance(path, io.IOBase) else str(path)) as container:
        stream = container.streams.video[0]
        # VP9 alpha lives in a side stream that only libvpx decodes.
        codec = "libvpx-vp9" if stream.codec_context.name == "vp9" else None
        if codec:
            ctx = av.CodecContext.create(codec, "r")
            ctx.extradata = stream.codec_context.extradata
            decode = (f for pkt in container.demux(stream) for f in ctx.decode(pkt))
        else:
            decode = container.decode(stream)
        for f in decode:
            try:
                check_budget(_name(path), f.width, f.height, len(frames) + 1)
            except InputTooLarge as e:
                raise AnimationReadError(str(e)) from None
            fmt = "rgba" if "a" in f.format.name.replace("gray", "") else "rgb24"
            arr = f.to_ndarray(format=fmt)
            if arr.shape[-1] == 3:
                arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], -1)
            frames.append(arr)
            times.append(float(f.time) if f.time is not None else len(times) / float(stream.average_rate or 24))
            if max_frames and len(frames) >= max_frames:
                break
        rate = float(stream.average_rate or 24)
    if not frames:
        raise AnimationReadError(f"'{path}': no video frames")
    durations = [max(1, round(1000 * (b - a))) for a, b in itertools.pairwise(times)] + [round(1000 / rate)]
    return Animation(np.stack(frames), durations)


def truncation_problem(head: bytes, tail: bytes, size: int) -> str | None:
    """Why a WebP/PNG/GIF file of `size` bytes looks cut short (from its first 12 and last 12 bytes), else None.

    Pillow decodes a truncated animated WebP as fewer frames without an error, so the container's own
    length (RIFF size field) and end markers (PNG IEND chunk, GIF trailer) are checked first.
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        want = int.from_bytes(head[4:8], "little") + 8
        return f"truncated WebP ({size} of {want} bytes)" if size < want else None
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return None if b"IEND" in tail else "truncated PNG (no IEND chunk)"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return None if tail.rstrip(b"\x00")[-1:] == b";" else "truncated GIF (no trailer)"
    return None


def read_animation(path: str | Path, max_frames: int | None = None) -> Animation:
    """Decode `path` into straight RGBA frames; raises AnimationReadError with the file name."""
    path = Path(path)
    if not path.is_file():
        raise AnimationReadError(f"'{path}': file not found")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(12)
            fh.seek(max(0, size - 12))
            problem = truncation_problem(head, fh.read(12), size)
        if problem:
            raise AnimationReadError(f"'{path}': {problem}")
    try:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return _read_pyav(path, max_frames)
        return _read_pillow(path, max_frames)
    except AnimationReadError:
        raise
    except (UnidentifiedImageError, OSError, EOFError, ValueError, SyntaxError) as e:
        raise AnimationReadError(f"'{path}': unreadable or truncated animation ({type(e).__name__}: {e})") from None
    except Exception as e:  # noqa: BLE001 -- PyAV raises its own error family
        raise AnimationReadError(f"'{path}': cannot decode ({type(e).__name__}: {e})") from None


def decode_animation(data: bytes, suffix: str, max_frames: int | None = None,
                     indices: list[int] | None = None) -> Animation:
    """Decode in-memory file bytes (`suffix` like '.webp' picks the decoder); raises AnimationReadError.

    With `indices` (Pillow formats) only those frames are converted and returned, in order, while
    `durations_ms` still lists every decoded frame; repeated indices repeat frames.
    """
    name = f"<bytes{suffix}>"
    problem = None if suffix.lower() in VIDEO_SUFFIXES else truncation_problem(data[:12], data[-12:], len(data))
    if problem:
        raise AnimationReadError(f"'{name}': {problem}")
    try:
        if suffix.lower() in VIDEO_SUFFIXES:
            anim = _read_pyav(io.BytesIO(data), max_frames)
            return Animation(anim.frames[indices], anim.durations_ms) if indices is not None else anim
        if indices is None:
            return _read_pillow(io.BytesIO(data), max_frames)
        wanted = sorted(set(indices))
        anim = _read_pillow(io.BytesIO(data), max(wanted) + 1, keep=set(wanted))
        if len(anim.frames) < len(wanted):
            raise AnimationReadError(f"'{name}': frame {max(wanted)} requested, file has {len(anim.durations_ms)}")
        pos = {i: k for k, i in enumerate(wanted)}
        return Animation(anim.frames[[pos[i] for i in indices]], anim.durations_ms)
    except AnimationReadError:
        raise
    except (UnidentifiedImageError, OSError, EOFError, ValueError, SyntaxError, IndexError) as e:
        raise AnimationReadError(f"'{name}': unreadable or truncated animation ({type(e).__name__}: {e})") from None
    except Exception as e:  # noqa: BLE001 -- PyAV raises its own error family
        raise AnimationReadError(f"'{name}': cannot decode ({type(e).__name__}: {e})") from None
