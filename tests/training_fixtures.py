"""A tiny but real data root (animated WebPs + stills named by code points) for training tests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from animated_stickers.data.splits import split_of

ANIM_DIR = "src/lobehub-fluent-emoji-anim-1-1.0.0/package/assets"
STILL_DIR = "src/lobehub-fluent-emoji-3d-1.1.0/package/assets"
CANDIDATES = ["1f600", "1f601", "1f602", "1f603", "1f604", "1f605", "1f606", "1f607", "1f608", "1f609",
              "1f60a", "1f60b", "1f60c", "1f60d", "1f60e", "1f60f"]


def disc_frames(n: int, size: int, phase: float, colour: tuple[int, int, int]) -> list[Image.Image]:
    """A soft-edged disc bouncing on a transparent canvas: a seamless loop of n frames."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    frames = []
    for t in range(n):
        cy = size / 2 + size / 6 * math.sin(2 * math.pi * t / n + phase)
        d = np.hypot(yy - cy, xx - size / 2)
        a = np.clip((size / 4 - d) / 2, 0, 1)
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = (a * 255).astype(np.uint8)
        frames.append(Image.fromarray(rgba, "RGBA"))
    return frames


def make_data_root(root: Path, n_anim: int = 4, n_still: int = 4, size: int = 64) -> Path:
    """Write n_anim animated WebPs (24 frames, ~24 fps) and n_still stills, all in the train split."""
    names = [c for c in CANDIDATES if split_of(c) == "train"]
    (root / ANIM_DIR).mkdir(parents=True, exist_ok=True)
    (root / STILL_DIR).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names[:n_anim]):
        frames = disc_frames(24, size, i, (200, 40 * i % 255, 90))
        frames[0].save(root / ANIM_DIR / f"{name}.webp", save_all=True, append_images=frames[1:], duration=42,
                       loop=0, lossless=True)
    for i, name in enumerate(names[n_anim:n_anim + n_still]):
        disc_frames(1, size, i, (30, 200, 40 * i % 255))[0].save(root / STILL_DIR / f"{name}.webp", lossless=True)
    return root


def make_prepared(tmp: Path, videos: bool = False) -> Path:
    """The data root above, prepared into shards (animated, stills, 2 procedural clips; with `videos`,
    a folder of user videos too): what `stickers train --data` reads."""
    from animated_stickers.data.shards import PrepareOptions, prepare
    from animated_stickers.data.sources import fluent_items, procedural_items, user_items

    root = make_data_root(tmp / "cache")
    stills = fluent_items(root, "still")
    items = fluent_items(root, "animated") + stills + procedural_items(stills[:2], 1)
    if videos:
        items += user_items(make_user_videos(tmp / "videos"))
    out = tmp / "prepared"
    prepare(items, out, PrepareOptions(with_mv=False, bucket_score="frame_diff", procedural_size=64,
                                       progress=False))
    return out


def make_user_videos(folder: Path, n: int = 3, size: int = 48) -> Path:
    """A user's folder: n looping GIFs of a bouncing disc with a caption sidecar each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        frames = disc_frames(16, size, i, (40, 90 + 50 * i, 200))
        frames[0].save(folder / f"ball{i}.gif", save_all=True, append_images=frames[1:], duration=60, loop=0,
                       disposal=2)
        (folder / f"ball{i}.txt").write_text(f"a blue ball number {i} bouncing")
    return folder
