"""Contact sheets and animated previews per motion bucket, so a person can check the bucketing (paper 3.1.1).

For each bucket: `bucket-<i>-<fps>fps.png`, rows of the 8 frames a training clip would take at the bucket's
fps (on a checkerboard, so transparency shows), and `bucket-<i>-<fps>fps.webp`, the same clips as a grid
playing at that fps. Samples are spread over the bucket's score range (lowest to highest).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..atomic import atomic_path
from ..rgba import fit_pad_frames
from .animation import decode_animation
from .buckets import MotionBuckets
from .clips import plan_clip
from .loader import source_frames
from .stats import load_manifest

TILE = 96
LABEL_H = 14


def checkerboard(size: int, cell: int = 8) -> np.ndarray:
    """A light grey checkerboard (size, size, 3) float in [0, 1]."""
    yy, xx = np.mgrid[:size, :size]
    return np.where(((yy // cell + xx // cell) % 2)[..., None] == 0, 0.85, 1.0) * np.ones(3)


def over_checkerboard(frames: np.ndarray) -> np.ndarray:
    """Straight RGBA (T, S, S, 4) uint8 composited over a checkerboard -> RGB uint8."""
    f = frames.astype(np.float32) / 255.0
    a = f[..., 3:]
    rgb = f[..., :3] * a + checkerboard(frames.shape[1]) * (1 - a)
    return (rgb * 255 + 0.5).astype(np.uint8)


def _read_sample(folder: Path, rec: dict) -> bytes:
    with tarfile.open(folder / rec["shard"]) as tf:
        return tf.extractfile(f"{rec['key']}.{rec['ext']}").read()


def _pick(rows: list[dict], k: int, score: str) -> list[dict]:
    rows = sorted(rows, key=lambda r: r["scores"][score])
    if len(rows) <= k:
        return rows
    return [rows[round(i * (len(rows) - 1) / (k - 1))] for i in range(k)] if k > 1 else rows[len(rows) // 2:][:1]


def write_previews(folder: str | Path, out: str | Path, per_bucket: int = 6, num_frames: int = 8,
                   tile: int = TILE) -> list[Path]:
    """Write a contact sheet (PNG) and an animated grid (WebP) per motion bucket; returns the files."""
    folder, out = Path(folder), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buckets = MotionBuckets.load(folder / "buckets.json")
    rows = [r for r in load_manifest(folder)
            if r["kind"] == "animated" and (r.get("scores") or {}).get(buckets.score) is not None]
    written = []
    for b, fps in enumerate(buckets.fps):
        members = _pick([r for r in rows if buckets.bucket_of(r["scores"][buckets.score]) == b], per_bucket,
                        buckets.score)
        if not members:
            continue
        clips, labels = [], []
        for rec in members:
            plan = plan_clip(rec["n_frames"], rec["fps"], fps, None, num_frames, loop=True)
            indices = source_frames(rec, plan.indices)
            frames = decode_animation(_read_sample(folder, rec), "." + rec["ext"], indices=indices).frames
            clips.append(over_checkerboard(fit_pad_frames(frames, tile)))
            labels.append(f"{rec['scores'][buckets.score]:.2f} {rec.get('label') or rec['key']}"[:40])
        stem = f"bucket-{b}-{fps:g}fps"
        written.append(contact_sheet(clips, labels, tile, out / f"{stem}.png"))
        written.append(animated_grid(clips, tile, fps, out / f"{stem}.webp"))
    return written


def contact_sheet(clips: list[np.ndarray], labels: list[str], tile: int, path: Path) -> Path:
    """Clips (T, tile, tile, 3) uint8 as labelled rows of frames -> a PNG at `path` (written atomically)."""
    n_frames = clips[0].shape[0]
    sheet = Image.new("RGB", (n_frames * tile, len(clips) * (tile + LABEL_H)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (clip, label) in enumerate(zip(clips, labels)):
        y = r * (tile + LABEL_H)
        draw.text((2, y + 1), label, fill="black")
        for c, frame in enumerate(clip):
            sheet.paste(Image.fromarray(frame), (c * tile, y + LABEL_H))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def animated_grid(clips: list[np.ndarray], tile: int, fps: float, path: Path) -> Path:
    """Clips (T, tile, tile, 3) uint8 playing side by side, 3 per row -> an animated WebP at `path`."""
    cols = min(len(clips), 3)
    rows = -(-len(clips) // cols)
    frames = []
    for t in range(clips[0].shape[0]):
        canvas = Image.new("RGB", (cols * tile, rows * tile), "white")
        for i, clip in enumerate(clips):
            canvas.paste(Image.fromarray(clip[t]), ((i % cols) * tile, (i // cols) * tile))
        frames.append(canvas)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="WEBP", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                       loop=0, quality=85)
    return path
