"""Real reference animations for evaluation: held-out Fluent animated emoji as 8-frame clips + prompts.

The split, the captions and the clip spacing rule come from the data area (data/splits.py,
data/captions.py, data/clips.py), so evaluation sees exactly the clips training never saw.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import cond_index
from ..data.animation import read_animation
from ..data.captions import CaptionError, caption_for
from ..data.clips import clip_indices, frame_spacing
from ..data.sources import emoji_key, unique_emoji_files
from ..data.splits import split_of
from ..rgba import premultiply, resize_premultiplied, to_uint8, unpremultiply


def default_fluent_glob() -> str:
    """Fluent animated WebPs unpacked by `stickers data fetch` into the data cache."""
    from ..data.sources import default_cache

    return str(default_cache() / "src" / "lobehub-fluent-emoji-anim-*" / "package" / "assets" / "*.webp")


def name_hash(name: str) -> int:
    """A stable integer of a name (sha1): per-emoji phases, halves and seeds that never change between runs."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16)


def prompt_for(stem: str) -> str:
    """The emoji's name alone (its CLDR label), the stem itself when it is not a known emoji: a result
    judged against the artist's clip must not be told anything measured from that clip."""
    try:
        return caption_for(stem).label
    except CaptionError:
        return stem


def fluent_files(pattern: str | None = None, split: str | None = "heldout") -> list[Path]:
    """Animated WebPs matching `pattern` (default: the fetched Fluent packages), one per emoji
    (data.sources.unique_emoji_files), optionally one split only; ordered by emoji key so that
    `--limit N` always takes the same clips."""
    files = unique_emoji_files([Path(p) for p in glob.glob(pattern or default_fluent_glob())])
    files = [p for p in files if split in (None, "all") or split_of(p.stem) == split]
    return sorted(files, key=lambda p: emoji_key(p.stem))


@dataclass
class RealClip:
    """One real 8-frame clip (straight RGBA uint8 (T, H, W, 4)) and a whole-loop variant of it."""

    stem: str
    clip: np.ndarray  # 8 frames at `fps` (paper 3.1: spacing rule), starting at a per-name phase
    loop: np.ndarray  # 8 frames spread evenly over the whole (seamless) animation: a true loop
    cond: int

    @property
    def image(self) -> np.ndarray:
        """The conditioning image: the clip's middle frame (paper 3.1.2)."""
        return self.clip[self.cond]


def load_real_clip(
    path: Path, size: int = 128, length: int = 8, fps: float = 8.0, cond: int | None = None
) -> RealClip | None:
    """Read a Fluent animation and cut its clips (conditioning frame `cond`, default config.cond_index: 3 of
    8); None for stills or too-short files."""
    cond = cond_index(length) if cond is None else cond
    anim = read_animation(path)
    n = anim.num_frames
    if n < length:
        return None
    step = frame_spacing(anim.fps or 24.0, n, fps, length)
    start = name_hash(path.stem) % n  # seamless loops: any phase
    idx = np.array(clip_indices(n, step, start, length, loop=True))
    loop_idx = np.round(np.arange(length) * n / length).astype(int) % n
    loop_idx = (loop_idx + idx[cond] - loop_idx[cond]) % n  # same middle frame as the clip
    frames = anim.frames.astype(np.float32) / 255.0
    return RealClip(path.stem, _resize(frames[idx], size), _resize(frames[loop_idx], size), cond)



def load_real_clips(files: Iterable[Path], limit: int | None, size: int,
                    progress: Callable[[Iterable], Iterable] = iter) -> list[RealClip]:
    """Real clips of `files` in order (stills and too-short files skipped), at most `limit` of them."""
    clips: list[RealClip] = []
    for path in progress(files):
        if limit is not None and len(clips) >= limit:
            break
        rc = load_real_clip(path, size=size)
        if rc is not None:
            clips.append(rc)
    return clips


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    """Straight RGBA float (T, H, W, 4) -> uint8 at size x size, resampled premultiplied (no dark fringes)."""
    p = resize_premultiplied(premultiply(frames), (size, size))
    return to_uint8(unpremultiply(p))
