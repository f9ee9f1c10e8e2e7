"""Where each stage's data comes from: source files -> frame banks and latent banks (cached).

Sources (all real, offline, unpacked by `stickers data fetch` under DATA_ROOT/src/):
  fluent     - Microsoft Fluent animated emoji (npm @lobehub/fluent-emoji-anim-1..4, MIT)
  stills     - Fluent 3D still emoji (npm @lobehub/fluent-emoji-3d, MIT): the "static stickers" data
  procedural - procedural motion of stills (data/procedural.py): the weakly in-domain stage
Only the train split is used (data/splits.py: held-out emoji never reach training).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.animation import AnimationReadError, read_animation
from ..data.captions import base_key, caption_for
from ..data.sources import fluent_paths
from ..models.checkpoint import StickerModel
from .banks import FrameBank, LatentBank, VideoEntry, resize_rgba

KEEP_STRIDE = 2  # keep every 2nd frame of ~24 fps videos: ~12 fps, enough for 4-12 fps clips
PROCEDURAL_STILLS = 150  # stills animated procedurally for the weakly in-domain stage
PROCEDURAL_FRAMES, PROCEDURAL_FPS = 24, 12.0  # a 2 s seamless loop


def fluent_files(root: Path, split: str = "train") -> list[Path]:
    """Fluent animated emoji files of a split (data.sources.fluent_paths)."""
    return fluent_paths(root, "animated", split)


def still_files(root: Path, split: str = "train") -> list[Path]:
    """Fluent 3D still emoji of a split."""
    return fluent_paths(root, "still", split)


def one_per_base(files: list[Path]) -> list[Path]:
    """One file per base emoji (skin tones collapsed), preferring the default tone."""
    best: dict[str, Path] = {}
    for f in files:
        k = base_key(f.stem)
        if k not in best or len(f.stem) < len(best[k].stem):
            best[k] = f
    return sorted(best.values())


def vae_frames(root: Path, size: int, banks_dir: Path) -> FrameBank:
    """Frames for the VAE: 4 per animated emoji (all skin tones: colour variety) + every still."""
    files = fluent_files(root) + still_files(root)
    return FrameBank.build(files, size, per_file=4, cache=banks_dir / f"vae-frames-{size}.npz")


@torch.no_grad()
def _encode(model: StickerModel, frames: np.ndarray, batch: int = 32) -> torch.Tensor:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    out = [model.vae.encode(x[i:i + batch].float() / 255).half() for i in range(0, len(x), batch)]
    return torch.cat(out)


def _fit_buckets(scores: list[float], banks_dir: Path, name: str):
    """Motion buckets (paper 3.1.1) fitted on this bank's frame-difference scores; saved for inspection."""
    from ..data.buckets import MotionBuckets

    buckets = MotionBuckets.fit(scores, fps=(4, 6, 8, 12), score="frame_diff")
    buckets.save(banks_dir / f"{name}-buckets.json")
    return buckets


def latent_bank(name: str, root: Path, model: StickerModel, banks_dir: Path) -> LatentBank:
    """Build (or load the cached) latent bank `name` at the model's resolution."""
    size = model.cfg.resolution
    cache = banks_dir / f"{name}-{size}-s{model.cfg.vae.scaling_factor:.4f}.pt"
    if cache.is_file():
        return LatentBank.load(cache)
    banks_dir.mkdir(parents=True, exist_ok=True)
    items: list[tuple[str, np.ndarray, float, bool]] = []  # (caption, frames, fps, loops)
    if name == "fluent":
        for f in tqdm(one_per_base(fluent_files(root)), desc="fluent clips", unit="file"):
            try:
                anim = read_animation(f)
            except AnimationReadError as e:
                print(f"skip: {e}")
                continue
            if anim.num_frames < 8:
                continue  # a still shipped in the animated set
            items.append((caption_for(f.stem).text, anim.frames[::KEEP_STRIDE], anim.fps / KEEP_STRIDE, True))
    elif name == "stills":
        for f in tqdm(still_files(root), desc="stills", unit="file"):
            try:
                items.append((caption_for(f.stem).text, read_animation(f, max_frames=1).frames, 1.0, True))
            except AnimationReadError as e:
                print(f"skip: {e}")
    elif name == "procedural":
        from ..data.procedural import animate_still, motion_caption, pick_motions

        stills = one_per_base(still_files(root))[:PROCEDURAL_STILLS]
        for f in tqdm(stills, desc="procedural", unit="still"):
            try:
                still = read_animation(f, max_frames=1).frames[0]
            except AnimationReadError as e:
                print(f"skip: {e}")
                continue
            motion = pick_motions(f.stem, 1)[0]
            frames = animate_still(still, motion, size=size, num_frames=PROCEDURAL_FRAMES)
            items.append((motion_caption(caption_for(f.stem).label, motion), frames, PROCEDURAL_FPS, True))
    else:
        raise ValueError(f"unknown data source '{name}': expected fluent, stills or procedural")

    from ..data.motion import frame_difference_score

    latents, entries, captions, start = [], [], [], 0
    for caption, frames, fps, loops in tqdm(items, desc=f"encode {name}@{size}px", unit="video"):
        small = resize_rgba(frames, size)
        score = float(frame_difference_score(small, fps)) if len(small) > 1 else 0.0
        z = _encode(model, small)
        latents.append(z)
        entries.append(VideoEntry(name=caption, caption=caption, fps=fps, sample_fps=fps, motion=score,
                                  start=start, length=len(z), loops=loops))
        captions.append(caption)
        start += len(z)
    if name != "stills":
        buckets = _fit_buckets([e.motion for e in entries], banks_dir, name)
        for e in entries:
            e.sample_fps = float(buckets.fps_for(e.motion))
    text = [[] for _ in model.cfg.text.encoders]
    for i in tqdm(range(0, len(captions), 64), desc="text", unit="batch"):
        for k, t in enumerate(model.text(captions[i:i + 64])):
            text[k].append(t.half())
    bank = LatentBank(torch.cat(latents), [torch.cat(t) for t in text], entries)
    bank.save(cache)
    return bank
