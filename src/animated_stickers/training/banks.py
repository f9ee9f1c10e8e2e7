"""In-memory training banks built once from source files and cached as .npz next to the run.

On a CPU the expensive parts of an LDM step are decoding animations and running the VAE, so
(like large-scale LDM training) stages after the VAE train on cached latents:
  FrameBank  - RGBA frames at the stage resolution (VAE stage, latent encoding)
  LatentBank - per video: VAE latents of every kept frame, frame rate, motion-bucket fps,
               caption and its frozen text-encoder states (T2I and video stages)
Sampling from a bank is a pure function of (seed, step, rank), so resume is exact for free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..data.animation import AnimationReadError, read_animation
from ..data.clips import clip_indices, frame_spacing, max_start


def resize_rgba(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 4) uint8 straight RGBA -> (T, size, size, 4): fit the long side, pad transparent.

    Pillow resamples RGBA in premultiplied form, so transparent pixels do not bleed colour.
    """
    out = np.zeros((len(frames), size, size, 4), np.uint8)
    h, w = frames.shape[1:3]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    y, x = (size - nh) // 2, (size - nw) // 2
    for i, f in enumerate(frames):
        out[i, y:y + nh, x:x + nw] = np.asarray(Image.fromarray(f, "RGBA").resize((nw, nh), Image.LANCZOS))
    return out


@dataclass
class FrameBank:
    """RGBA frames (N, S, S, 4) uint8 for VAE training."""

    frames: np.ndarray

    @classmethod
    def build(cls, files: list[Path], size: int, per_file: int, cache: Path | None = None,
              seed: int = 0) -> FrameBank:
        if cache and cache.is_file():
            return cls(np.load(cache)["frames"])
        rng = np.random.default_rng(seed)
        chunks, bad = [], 0
        for f in tqdm(files, desc=f"frames@{size}px", unit="file"):
            try:
                anim = read_animation(f)
            except AnimationReadError:
                bad += 1
                continue
            idx = np.sort(rng.choice(anim.num_frames, min(per_file, anim.num_frames), replace=False))
            chunks.append(resize_rgba(anim.frames[idx], size))
        if bad:
            print(f"skipped {bad} unreadable files")
        bank = cls(np.concatenate(chunks))
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.stem + ".tmp.npz")
            np.savez(tmp, frames=bank.frames)
            tmp.replace(cache)
        return bank

    def batch(self, gen: torch.Generator, batch_size: int, crop: int) -> torch.Tensor:
        """Random frames, random crops and flips -> (B, 4, crop, crop) straight RGBA in [0, 1]."""
        n, s = self.frames.shape[:2]
        idx = torch.randint(n, (batch_size,), generator=gen)
        out = []
        for i in idx.tolist():
            y, x = torch.randint(s - crop + 1, (2,), generator=gen).tolist()
            f = torch.from_numpy(self.frames[i, y:y + crop, x:x + crop]).permute(2, 0, 1).float() / 255
            if torch.rand((), generator=gen) < 0.5:
                f = f.flip(-1)
            out.append(f)
        return torch.stack(out)


@dataclass
class VideoEntry:
    """One training video in a LatentBank."""

    name: str
    caption: str
    fps: float  # frame rate of the kept frames (source fps / keep stride)
    sample_fps: float  # motion-bucket sampling fps (paper 3.1.1)
    motion: float
    start: int  # offset of this video's frames in LatentBank.latents
    length: int
    loops: bool = True  # seamless loop: clips may wrap around the end


@dataclass
class LatentBank:
    """VAE latents of every kept frame of many videos, captions and their text-encoder states."""

    latents: torch.Tensor  # (N_frames, C, h, w) float16, scaled
    text: list[torch.Tensor]  # per encoder: (N_captions, L, D) float16
    entries: list[VideoEntry] = field(default_factory=list)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.stem + ".tmp.pt")
        blob = {"latents": self.latents, "text": self.text,
                "entries": json.dumps([e.__dict__ for e in self.entries])}
        torch.save(blob, tmp)  # internal cache of tensors only, never a shipped checkpoint
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LatentBank:
        blob = torch.load(path, weights_only=True)
        return cls(blob["latents"], blob["text"], [VideoEntry(**e) for e in json.loads(blob["entries"])])

    def clip(self, i: int, gen: torch.Generator, num_frames: int, fps: float | None,
             cond_frame: int) -> tuple[torch.Tensor, torch.Tensor]:
        """An n-frame clip of video i at `fps` (None = its motion-bucket fps) with the paper's spacing
        rule (data/clips.py); returns (clip (C, T, h, w), conditioning latent (C, h, w))."""
        e = self.entries[i]
        spacing = frame_spacing(e.fps, e.length, fps or e.sample_fps, num_frames)
        start = int(torch.randint(max_start(e.length, spacing, num_frames, e.loops) + 1, (1,), generator=gen))
        idx = clip_indices(e.length, spacing, start, num_frames, loop=e.loops)
        frames = self.latents[[e.start + j for j in idx]].float()  # (T, C, h, w)
        return frames.transpose(0, 1), frames[cond_frame]
