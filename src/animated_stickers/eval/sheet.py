"""One sticker under several prompts as a labelled contact sheet (issue 12: the model card's relevance picture).

Each row is one prompt's clip (its frames left to right, at most MAX_COLUMNS of them, on a checkerboard so
transparency shows), labelled with the prompt and the motion the estimator measures in it (motion/words.py),
so the picture and the agreement figure say the same thing. Also writes the rows as one animated grid (WebP).
With an artist's clip (`artist_row`) its first row is that clip, the still its frame 0, played at the rows'
frame rate: the model's motion beside the artist's, on one sheet (issue 28's contact sheets).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data.preview import animated_grid, contact_sheet, over_checkerboard
from ..motion.words import describe_motion, dominant_motion
from ..rgba import fit_pad_frames

MAX_COLUMNS = 12  # frames per row on the sheet (the animated grid keeps every frame)


def artist_row(frames: np.ndarray, clip_fps: float, fps: float, num_frames: int) -> np.ndarray:
    """An artist's clip (T, H, W, 4) uint8 at `clip_fps` as `num_frames` frames at `fps` from its frame 0 (the
    still of the other rows), wrapping round its loop: the same seconds as the rows beside it."""
    idx = [round(i * clip_fps / fps) % len(frames) for i in range(num_frames)]
    return frames[idx]


def prompt_sheet(animate: Callable, rgba: np.ndarray, prompts: list[str], out: Path, cond: int,
                 fps: float = 8.0, tile: int = 96, artist: tuple[str, np.ndarray, float] | None = None) -> list[dict]:
    """`animate(rgba, prompts) -> list of (T, H, W, 4) uint8` clips -> `out` (.png) and its .webp grid;
    returns one {prompt, measured} per row. `artist` = (label, frames (T', H, W, 4) uint8, clip fps): a first
    row of the artist's own clip (`artist_row`), measured like the others from its frame 0, the still."""
    clips = animate(rgba, prompts)
    rows = [{"prompt": p, "measured": dominant_motion(describe_motion(c, fps, cond))} for p, c in zip(prompts, clips)]
    if artist is not None:
        label, frames, clip_fps = artist
        clip = artist_row(frames, clip_fps, fps, len(clips[0]))
        clips = [clip, *clips]
        rows = [{"prompt": label, "measured": dominant_motion(describe_motion(clip, fps, 0))}, *rows]
    tiles = [over_checkerboard(fit_pad_frames(c, tile)) for c in clips]  # (T, tile, tile, 3) each
    labels = [f"{r['prompt']}  ->  measured: {r['measured']}" for r in rows]
    step = -(-len(clips[0]) // MAX_COLUMNS)  # a 48-frame motion-path loop: every 4th frame on the sheet
    contact_sheet([t[::step] for t in tiles], labels, tile, out)
    animated_grid(tiles, tile, fps, out.with_suffix(".webp"))
    return rows
