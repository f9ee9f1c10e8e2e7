"""Training examples streamed from WebDataset shards: 8-frame RGBA clips, conditioning frame, CFG dropout.

One loader serves 1 GPU or 64: every (rank, DataLoader worker) pair is a *reader*; with at least as many
shards as readers each reader takes every n-th shard, otherwise every reader streams all shards and keeps
every n-th sample, so no sample is read twice in an epoch either way. Shard order is shuffled per epoch,
samples through a buffer; every random choice of a sample (clip start, conditioning frame, dropout) comes
from a generator seeded by (seed, epoch, sample key), so a seed fixes the data exactly.

An example (see `make_example`) is a dict:
    video (4, T, H, W) float32 straight RGBA in [0, 1]   (a batch is (B, C, T, H, W))
    cond_image (4, H, W) = video[:, cond_index];  cond_index int (3 = 4th of 8 by default, paper 3.1.2)
    prompt str ("" when the text is dropped), caption str (never dropped), drop_text / drop_image bool
    fps float (the clip's effective rate), key, source, split str
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import random
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..keying import key_background as chroma_key_frames
from ..rgba import fit_pad_frames
from .animation import AnimationReadError, decode_animation
from .buckets import MotionBuckets
from .captions import CAPTION_MIX, training_caption
from .clips import COND_MODES, cond_frame_index, plan_clip, plan_loop_clip

log = logging.getLogger(__name__)
DROPOUT = 0.07  # each CFG dropout case (text, image, both): the paper's 5-10%
MEDIA_EXTS = ("webp", "gif", "png", "apng", "mp4", "webm", "mov", "mkv")


@dataclass
class LoaderConfig:
    """What examples to make from a prepared data folder (or a glob of .tar shards)."""

    data: str
    resolution: int = 128
    num_frames: int = 8
    fps: float | str = 4.0  # sampling rate, or "dynamic" for the motion bucket's rate (paper 3.1.1)
    cond_mode: str = "middle"  # middle | first | last | random (paper 3.1.2)
    p_drop_text: float = DROPOUT  # text only dropped (CFG dropout, paper 2.1)
    p_drop_image: float = DROPOUT  # image only dropped
    p_drop_both: float = DROPOUT  # both dropped
    max_fps: float | None = 12.0  # clips are planned on a step grid thinned to at most this rate
    caption_mix: tuple[float, float, float] = CAPTION_MIX  # subject+motion, motion only, subject only
    split: str | None = "train"  # 'train', 'heldout' or None for both
    kinds: tuple[str, ...] = ("animated",)  # add 'still' to get still images as frozen clips
    sources: tuple[str, ...] | None = None  # e.g. ('fluent-anim', 'procedural'); None = all
    shuffle_buffer: int = 256
    seed: int = 0
    loop_clips: bool = True  # samples that loop give whole loops (t frames over one period, random phase)
    epochs: int | None = None  # None streams forever (what a step-counted training loop wants)
    buckets: str | None = None  # a buckets.json to use instead of the one stored with the samples

    def __post_init__(self) -> None:
        if self.cond_mode not in COND_MODES:
            raise ValueError(f"cond_mode '{self.cond_mode}': expected one of {', '.join(COND_MODES)}")
        if not (self.fps == "dynamic" or (isinstance(self.fps, (int, float)) and self.fps > 0)):
            raise ValueError(f"fps '{self.fps}': expected a positive number or 'dynamic'")
        total = self.p_drop_text + self.p_drop_image + self.p_drop_both
        if min(self.p_drop_text, self.p_drop_image, self.p_drop_both) < 0 or total > 1:
            raise ValueError(f"dropout rates must be >= 0 and sum to <= 1, got {total}")


def list_shards(data: str, split: str | None = None, kinds: tuple[str, ...] | None = None) -> list[str]:
    """Shard paths of a prepared folder (filtered by split/kind from the file names) or of a glob."""
    if os.path.isdir(data):
        paths = sorted(glob.glob(os.path.join(data, "*.tar")))
        if kinds:
            paths = [p for p in paths if Path(p).name.split("-", 1)[0] in kinds]
        if split:  # <kind>-<split>-NNNNNN.tar: an exact split ('heldout' is not 'heldout-style')
            paths = [p for p in paths if Path(p).name.split("-", 1)[-1].rsplit("-", 1)[0] == split]
    else:
        paths = sorted(glob.glob(data))
    return paths


def iter_tar(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) of each sample of a tar, streamed; a corrupt tail is logged and skipped."""
    current, parts = None, {}
    try:
        with tarfile.open(path, mode="r|*") as tf:
            for member in tf:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                prefix = member.name[: len(member.name) - len(base)]
                key, _, ext = base.partition(".")
                key = prefix + key
                if key != current and current is not None:
                    yield current, parts
                    parts = {}
                current = key
                parts[ext] = tf.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        log.warning("shard '%s': unreadable after sample '%s' (%s); skipping its rest", path, current, e)
        return
    if current is not None:
        yield current, parts


def draw_dropout(rng: random.Random, p_text: float, p_image: float, p_both: float) -> tuple[bool, bool]:
    """(drop_text, drop_image) for classifier-free guidance training: both, text only, image only, none."""
    u = rng.random()
    if u < p_both:
        return True, True
    if u < p_both + p_text:
        return True, False
    if u < p_both + p_text + p_image:
        return False, True
    return False, False


def sample_rng(seed: int, epoch: int, key: str) -> random.Random:
    """The generator of every random choice made for one sample in one epoch."""
    return random.Random(f"{seed}:{epoch}:{key}")


def source_frames(meta: dict, steps: Sequence[int]) -> list[int]:
    """File frame indices of constant-rate steps (identity unless the file holds some frames longer)."""
    mapping = meta.get("step_frames")
    return [mapping[i] for i in steps] if mapping else list(steps)


def clip_grid(meta: dict, max_fps: float | None) -> tuple[int, float, int]:
    """(frames, fps, stride) of the constant-rate step grid a sample's clips are planned on, thinned
    to at most `max_fps` (a 24 fps loop at max_fps 12 keeps every 2nd step)."""
    n, fps = int(meta["n_frames"]), float(meta["fps"])
    stride = max(1, math.ceil(fps / max_fps - 1e-6)) if max_fps and fps > 0 else 1
    return max(1, math.ceil(n / stride)), fps / stride, stride


@dataclass(frozen=True)
class ExamplePlan:
    """Every random choice behind one training example; grid frame indices, not file frames."""

    indices: tuple[int, ...]  # frames on the sample's clip_grid
    fps: float  # the clip's playback rate
    cond_index: int
    caption: str  # the templated caption (never dropped)
    drop_text: bool
    drop_image: bool
    loops: bool  # the clip is a whole seamless loop


def plan_example(meta: dict, cfg: LoaderConfig, rng: random.Random, buckets: MotionBuckets | None = None,
                 num_frames: int | None = None) -> ExamplePlan:
    """The one rule set that turns a sample's metadata into a clip (shared by the pixel loader and the
    training latent banks): whole loops where the sample loops, the paper's spacing rule elsewhere,
    a random roll, the conditioning frame, the caption template and CFG dropout."""
    t = num_frames or cfg.num_frames
    n, grid_fps, stride = clip_grid(meta, cfg.max_fps)
    period = meta.get("loop_period")
    if n < 2:  # a still as a frozen clip
        plan_idx, clip_fps, loops = (0,) * t, float(cfg.fps) if cfg.fps != "dynamic" else 8.0, True
    elif cfg.loop_clips and period:
        # Whole loops: the period in grid frames, `t` frames evenly over it from a random phase.
        p = min(n, max(1, round(period / stride)))
        plan = plan_loop_clip(n, p, grid_fps, rng, t)
        plan_idx, clip_fps, loops = plan.indices, plan.fps, True
    else:
        if cfg.fps == "dynamic":
            fps = buckets.fps_for((meta.get("scores") or {}).get(buckets.score)) if buckets else \
                float(meta.get("bucket_fps") or 8.0)
        else:
            fps = float(cfg.fps)
        plan = plan_clip(n, grid_fps, fps, rng, t, loop=False)
        plan_idx, clip_fps, loops = plan.indices, plan.fps, False
    cond_index = cond_frame_index(cfg.cond_mode, t, rng)
    caption = training_caption(meta, rng, cfg.caption_mix)
    drop_text, drop_image = draw_dropout(rng, cfg.p_drop_text, cfg.p_drop_image, cfg.p_drop_both)
    return ExamplePlan(tuple(plan_idx), float(clip_fps), cond_index, caption, drop_text, drop_image, loops)


def grid_source_frames(meta: dict, indices: Sequence[int], max_fps: float | None) -> list[int]:
    """File frame indices of clip_grid frames (grid -> constant-rate steps -> file frames)."""
    stride = clip_grid(meta, max_fps)[2]
    return source_frames(meta, [i * stride for i in indices])


def decode_grid(meta: dict, data: bytes, resolution: int, max_fps: float | None,
                indices: Sequence[int] | None = None) -> np.ndarray:
    """(T, S, S, 4) uint8 straight RGBA frames of a sample on its clip grid (all of them by default),
    keyed where the source had no alpha, fitted on a transparent square like a user's sticker."""
    if indices is None:
        indices = range(clip_grid(meta, max_fps)[0])
    frames = decode_animation(data, "." + meta["ext"], indices=grid_source_frames(meta, indices, max_fps)).frames
    if meta.get("key_color"):
        frames = chroma_key_frames(frames, tuple(meta["key_color"]))
    return fit_pad_frames(frames, resolution)


def make_example(meta: dict, data: bytes, cfg: LoaderConfig, rng: random.Random,
                 buckets: MotionBuckets | None = None) -> dict:
    """One training example from a sample's metadata and file bytes (see the module docstring)."""
    plan = plan_example(meta, cfg, rng, buckets)
    frames = decode_grid(meta, data, cfg.resolution, cfg.max_fps, plan.indices)
    video = torch.from_numpy(frames).permute(3, 0, 1, 2).float().div_(255.0)  # (T,H,W,4) -> (4,T,H,W)
    return {"video": video, "cond_image": video[:, plan.cond_index].clone(), "cond_index": plan.cond_index,
            "prompt": "" if plan.drop_text else plan.caption, "caption": plan.caption,
            "drop_text": plan.drop_text, "drop_image": plan.drop_image, "fps": plan.fps,
            "loops": plan.loops, "key": meta["key"], "source": meta.get("source", ""),
            "split": meta.get("split", "")}


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class StickerClips(torch.utils.data.IterableDataset):
    """Streams examples from shards, split over ranks and DataLoader workers (see module docstring)."""

    def __init__(self, cfg: LoaderConfig, rank: int | None = None, world_size: int | None = None):
        super().__init__()
        self.cfg = cfg
        dist_rank, dist_world = _dist_rank_world()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        self.shards = list_shards(cfg.data, cfg.split, cfg.kinds)
        if not self.shards:
            raise FileNotFoundError(f"'{cfg.data}': no .tar shards for split={cfg.split} kinds={cfg.kinds}; "
                                    "run `stickers data prepare` first")
        self.buckets = MotionBuckets.load(cfg.buckets) if cfg.buckets else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Start streaming from this epoch (for resuming); each epoch reshuffles."""
        self.epoch = epoch

    def _reader(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return self.rank * workers + worker, self.world_size * workers

    def _samples(self, epoch: int, reader: int, readers: int) -> Iterator[tuple[dict, bytes]]:
        shards = list(self.shards)
        random.Random(f"{self.cfg.seed}:shards:{epoch}").shuffle(shards)
        by_shard = len(shards) >= readers
        mine = shards[reader::readers] if by_shard else shards
        index = -1
        for path in mine:
            for key, parts in iter_tar(path):
                index += 1
                if not by_shard and index % readers != reader:
                    continue
                meta = self._meta(key, parts)
                if meta is None:
                    continue
                data = parts.get(meta.get("ext", ""))
                if data is not None:
                    yield meta, data

    def _meta(self, key: str, parts: dict[str, bytes]) -> dict | None:
        try:
            meta = json.loads(parts["json"])
        except (KeyError, ValueError):
            log.warning("sample '%s': no readable .json; skipped", key)
            return None
        cfg = self.cfg
        if cfg.split and meta.get("split") != cfg.split:
            return None
        if cfg.kinds and meta.get("kind") not in cfg.kinds:
            return None
        if cfg.sources and meta.get("source") not in cfg.sources:
            return None
        return meta

    def __iter__(self) -> Iterator[dict]:
        reader, readers = self._reader()
        epoch = self.epoch
        while self.cfg.epochs is None or epoch < self.cfg.epochs:
            shuffle = random.Random(f"{self.cfg.seed}:buffer:{epoch}:{reader}")
            buffer: list[tuple[dict, bytes]] = []
            produced = 0
            for item in self._samples(epoch, reader, readers):
                buffer.append(item)
                if len(buffer) >= self.cfg.shuffle_buffer:
                    example = self._example(buffer.pop(shuffle.randrange(len(buffer))), epoch)
                    if example is not None:
                        produced += 1
                        yield example
            shuffle.shuffle(buffer)
            for item in buffer:
                example = self._example(item, epoch)
                if example is not None:
                    produced += 1
                    yield example
            if produced == 0:
                log.warning("reader %d of %d got no samples in epoch %d", reader, readers, epoch)
                if self.cfg.epochs is None:
                    return  # nothing to stream: stop rather than spin forever
            epoch += 1

    def _example(self, item: tuple[dict, bytes], epoch: int) -> dict | None:
        meta, data = item
        try:
            return make_example(meta, data, self.cfg, sample_rng(self.cfg.seed, epoch, meta["key"]), self.buckets)
        except (AnimationReadError, ValueError, KeyError) as e:
            log.warning("sample '%s': skipped (%s)", meta.get("key"), e)
            return None


def make_dataloader(cfg: LoaderConfig, batch_size: int, num_workers: int = 0, rank: int | None = None,
                    world_size: int | None = None, **kwargs) -> torch.utils.data.DataLoader:
    """A DataLoader of batched examples: video (B, 4, T, H, W), cond_image (B, 4, H, W), prompt list[str]..."""
    dataset = StickerClips(cfg, rank=rank, world_size=world_size)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                       persistent_workers=num_workers > 0, **kwargs)
