"""Training banks: a cache of exactly what the data loader yields, at a stage's resolution.

Every stage reads prepared shards (`stickers data prepare`, `stickers train --data DIR`). The loader's
rules (data/loader.py: `plan_example` for the clip, roll, conditioning frame, caption template and CFG
dropout; `decode_grid` for the frames) are the only ones; a bank only caches their expensive half:
  LatentBank - VAE latents of every frame of each sample's clip grid (T2I and video stages)
  FrameBank  - RGBA frames at the stage resolution (VAE stage)
  PixelClips - full-resolution clips (the reference decoder stage)
Cache files are safetensors + JSON, keyed by the samples' manifest rows, the resolution, the grid rate
and the VAE weights, so a change of any of them rebuilds the cache. Sampling is a pure function of the
step's generator, so resume stays exact.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ..atomic import atomic_path
from ..data.animation import AnimationReadError
from ..data.loader import LoaderConfig, decode_grid, iter_tar, list_shards, plan_example
from ..data.motion import SPECTRAL_EXT
from ..errors import UserError


@dataclass
class Sample:
    """One prepared sample: its shard metadata and original file bytes."""

    meta: dict
    data: bytes
    spectral: bytes | None = None  # the motion target part (data prepare --motion-targets), when stored


def read_samples(folders: list[Path], split: str = "train", kinds: tuple[str, ...] = ("animated", "still"),
                 sources: set[str] | None = None, one_per_emoji: bool = False) -> list[Sample]:
    """The samples of prepared folders (sorted by key: a fixed order for fixed data). `one_per_emoji` keeps
    one skin-tone variant per emoji (the shortest name), which saves CPU without losing motions."""
    out: dict[str, Sample] = {}
    for folder in folders:
        shards = list_shards(str(folder), split, kinds)
        if not shards:
            raise UserError(f"--data '{folder}': no {split} shards of kind {'/'.join(kinds)}; "
                            "expected a folder made by `stickers data prepare`")
        for path in shards:
            for key, parts in iter_tar(path):
                try:
                    meta = json.loads(parts["json"])
                except (KeyError, ValueError):
                    continue
                if meta.get("split") != split or meta.get("kind") not in kinds:
                    continue
                if sources is not None and meta.get("source") not in sources:
                    continue
                data = parts.get(meta.get("ext", ""))
                if data is not None:
                    out[meta["key"]] = Sample(meta, data, parts.get(SPECTRAL_EXT))
    samples = sorted(out.values(), key=lambda s: s.meta["key"])
    if one_per_emoji:
        best: dict[str, Sample] = {}
        for s in samples:
            k = f"{s.meta.get('source')}:{s.meta.get('procedural_motion') or ''}:{s.meta.get('base') or s.meta['key']}"
            if k not in best or len(s.meta["name"]) < len(best[k].meta["name"]):
                best[k] = s
        samples = sorted(best.values(), key=lambda s: s.meta["key"])
    return samples


def cache_key(samples: list[Sample], *parts) -> str:
    """A short hash of the samples' manifest rows and whatever else shapes the cache."""
    h = hashlib.sha1()
    for s in samples:
        h.update(json.dumps(s.meta, sort_keys=True).encode())
    h.update(json.dumps([str(p) for p in parts]).encode())
    return h.hexdigest()[:16]


def rng_from(gen: torch.Generator) -> random.Random:
    """A `random.Random` drawn from the step's torch generator (data/ rules take a random.Random)."""
    return random.Random(int(torch.randint(2**62, (1,), generator=gen)))


def pick_sample(gen: torch.Generator, groups: list[list[int]], weights: torch.Tensor) -> int:
    """A sample index: a source group by its mixing weight, then a sample of it uniformly."""
    g = groups[int(torch.multinomial(weights, 1, generator=gen))]
    return g[int(torch.randint(len(g), (1,), generator=gen))]


def source_groups(metas: list[dict], weights: dict[str, float]) -> tuple[list[list[int]], torch.Tensor]:
    """Sample indices (into `metas`) per source named in `weights` that has samples, and their mixing
    weights; one clear error when none has."""
    groups, w = [], []
    for name, weight in weights.items():
        idx = [i for i, m in enumerate(metas) if m.get("source") == name]
        if idx and weight > 0:
            groups.append(idx)
            w.append(weight)
    if not groups:
        found = sorted({m.get("source", "?") for m in metas})
        raise UserError(f"stage data {dict(weights)}: none of these sources is in --data (found: "
                        f"{', '.join(found) or 'nothing'})")
    return groups, torch.tensor(w, dtype=torch.float)


# ---------------------------------------------------------------- latents (T2I and video stages)

@dataclass
class LatentBank:
    """VAE latents of every clip-grid frame of many samples."""

    latents: torch.Tensor  # (N_frames, C, h, w) float16, scaled
    metas: list[dict]  # per sample: its shard metadata + "start"/"length" into `latents`
    samples_key: str = ""

    @classmethod
    @torch.no_grad()
    def build(cls, samples: list[Sample], loader: LoaderConfig, encode, cache_dir: Path, vae_tag: str
              ) -> LatentBank:
        """Decode each sample's clip grid at `loader.resolution`, encode it (`encode`: (N, 4, S, S) in [0, 1]
        -> (N, C, h, w)), and cache the result; loads the cache when it matches."""
        key = cache_key(samples, loader.resolution, loader.max_fps, vae_tag)
        path = cache_dir / f"latents-{loader.resolution}-{key}.safetensors"
        if path.is_file():
            return cls.load(path)
        chunks, metas, start = [], [], 0
        for s in tqdm(samples, desc=f"encode {loader.resolution}px", unit="clip"):
            try:
                frames = decode_grid(s.meta, s.data, loader.resolution, loader.max_fps)  # (T, S, S, 4)
            except (AnimationReadError, ValueError) as e:
                print(f"skip {s.meta['key']}: {e}")
                continue
            x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255  # (T, S, S, 4) -> (T, 4, S, S)
            z = torch.cat([encode(x[i:i + 16]) for i in range(0, len(x), 16)]).half()
            chunks.append(z)
            metas.append({**s.meta, "start": start, "length": len(z)})
            start += len(z)
        if not chunks:
            raise UserError("no readable samples to train on in --data")
        bank = cls(torch.cat(chunks), metas, key)
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"latents": bank.latents.contiguous()}, str(tmp), metadata={"metas": json.dumps(metas)})
        return bank

    @classmethod
    def load(cls, path: Path) -> LatentBank:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            metas = json.loads(f.metadata()["metas"])
        return cls(load_file(str(path))["latents"], metas, path.stem.rsplit("-", 1)[-1])

    @classmethod
    def concat(cls, banks: list[LatentBank]) -> LatentBank:
        """One bank of several (one per --data folder, each cached on its own)."""
        metas, offset = [], 0
        for b in banks:
            metas += [{**m, "start": m["start"] + offset} for m in b.metas]
            offset += len(b.latents)
        return cls(torch.cat([b.latents for b in banks]), metas, "+".join(b.samples_key for b in banks))

    def example(self, i: int, rng: random.Random, loader: LoaderConfig, num_frames: int | None = None):
        """The loader's example of sample i as latents: (clip (C, T, h, w) float, plan)."""
        meta = self.metas[i]
        plan = plan_example(meta, loader, rng, num_frames=num_frames)
        idx = [meta["start"] + min(j, meta["length"] - 1) for j in plan.indices]
        return self.latents[idx].float().transpose(0, 1), plan  # (T, C, h, w) -> (C, T, h, w)


# ---------------------------------------------------------------- frames (VAE stage)

@dataclass
class FrameBank:
    """RGBA frames (N, S, S, 4) uint8 for VAE training: `per_sample` evenly spread frames of each sample."""

    frames: np.ndarray

    @classmethod
    def build(cls, samples: list[Sample], loader: LoaderConfig, per_sample: int, cache_dir: Path) -> FrameBank:
        key = cache_key(samples, loader.resolution, loader.max_fps, per_sample)
        path = cache_dir / f"frames-{loader.resolution}-{key}.safetensors"
        if path.is_file():
            return cls(load_file(str(path))["frames"].numpy())
        chunks = []
        for s in tqdm(samples, desc=f"frames {loader.resolution}px", unit="file"):
            try:
                frames = decode_grid(s.meta, s.data, loader.resolution, loader.max_fps)
            except (AnimationReadError, ValueError):
                continue
            idx = np.unique(np.linspace(0, len(frames) - 1, min(per_sample, len(frames))).round().astype(int))
            chunks.append(frames[idx])
        if not chunks:
            raise UserError("no readable samples to train the VAE on in --data")
        bank = cls(np.concatenate(chunks))
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"frames": torch.from_numpy(bank.frames)}, str(tmp))
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


# ---------------------------------------------------------------- full-resolution clips (decoder stage)

@dataclass
class PixelClips:
    """Full-resolution clips planned by the loader's rules, for the reference decoder stage.

    Decodes lazily and keeps up to `keep` decoded grids (a CPU cache, not a file)."""

    samples: list[Sample]
    loader: LoaderConfig
    groups: list[list[int]]
    weights: torch.Tensor
    keep: int = 64
    _grids: dict[int, np.ndarray] = field(default_factory=dict)

    def clip(self, gen: torch.Generator) -> tuple[np.ndarray, int]:
        """(frames uint8 (T, S, S, 4), conditioning index) of a random sample."""
        i = pick_sample(gen, self.groups, self.weights)
        rng = rng_from(gen)
        s = self.samples[i]
        if i not in self._grids:
            if len(self._grids) >= self.keep:
                self._grids.pop(next(iter(self._grids)))
            self._grids[i] = decode_grid(s.meta, s.data, self.loader.resolution, self.loader.max_fps)
        grid = self._grids[i]
        plan = plan_example(s.meta, self.loader, rng)
        return grid[[min(j, len(grid) - 1) for j in plan.indices]], plan.cond_index
