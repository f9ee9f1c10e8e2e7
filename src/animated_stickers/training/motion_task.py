"""Training stage `motion` (issue 28): the learned motion model, still + text -> spectral volume.

Data arrives through prepared shards only (`stickers data prepare --motion-targets`); the example rules
are data/motion_loader.py's (stored phase, mirror, caption template, CFG dropout). `MotionBank` caches
what is expensive (each stored phase's still, decoded and fitted; the volumes) in RUN/banks as
safetensors + JSON. `MotionTask` is a task for training/loop.py's `train_stage`, so the stage has the
loop's Accelerate engines, EMA, exact resume and safetensors + JSON checkpoints. Objective: x0, v or eps
(the MotionConfig's prediction type) on the normalised volume (motion/spectral.py `normalise`, scales
fitted on the bank's volumes and kept in the run's motion_config.json), IP2P conditioning and CFG dropout
(paper 2.1). With the stage's `canonical_phase` the target is the clip's consensus volume (its stored
phases aligned and averaged, in the canonical loop phase; the bank keeps the measured phases) and every
stored phase's still is a view of it (procedural clips keep their rest phase:
data/motion_loader.phase_is_canonical); the MotionConfig records it (`canonical_phase`) for sampling.
The target is cut to where the sticker shows over the loop (motion/spectral.py `motion_support`), the
loss weighs that over the empty canvas, and timesteps are drawn biased to high noise, where the
conditioning decides the result (`high_noise_timesteps`).

Layout: RUN/<stage>/motion_config.json (resolved config, written once), checkpoint-N/, metrics.jsonl,
model/ (config.json + motion.safetensors, EMA weights) when the stage completes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_path, atomic_write_text
from ..config import parse_overrides, to_dict
from ..data.animation import AnimationReadError
from ..data.motion import read_spectral
from ..data.motion_loader import augment, fresh_volume, phase_is_canonical, phase_stills, plan_motion_example
from ..diffusion.schedules import target, train_scheduler
from ..errors import UserError
from ..models.motion_net import (
    SUPPORT_DILATE,
    MotionConfig,
    MotionNet,
    load_motion_model,
    motion_config,
    save_motion_model,
)
from ..motion.spectral import alpha_on_grid, consensus_volume, fit_scales, motion_support, normalise
from .banks import Sample, cache_key, pick_sample, read_samples, rng_from, source_groups
from .loop import load_ema_weights, train_stage
from .recipes import Recipe, Stage

CONFIG_FILE = "motion_config.json"
BACKGROUND_WEIGHT = 0.2  # loss weight of the canvas outside the target's support (the support adds 1)


def high_noise_timesteps(n: int, total: int, gen: torch.Generator) -> torch.Tensor:
    """(n,) training timesteps drawn with density 2 (1 - u) mapped high: t = total (1 - (1 - u)^2). What the
    still and the text must decide (where and how it moves) is learned at high noise; at low noise the
    noisy field shows it. The 16-clip test (issue 28): text- and still-dependent within 500 steps."""
    u = torch.rand(n, generator=gen)
    return (total * (1 - (1 - u) ** 2)).long().clamp(0, total - 1)


@dataclass
class MotionBank:
    """Every stored conditioning phase of many clips: its still and its spectral volume."""

    stills: torch.Tensor  # (M, S, S, 4) uint8 straight RGBA
    volumes: torch.Tensor  # (M, 4K, s, s) float16 canvas units
    metas: list[dict]  # per sample: shard metadata + "start"/"count" into the phase rows
    consensus: torch.Tensor | None = None  # (N, 4K, s, s) float16: one target per sample (`with_consensus`)
    cross: torch.Tensor | None = None  # (C, S, S, 4) uint8: cross-style stills (`with_cross_styles`)
    cross_rows: list[tuple[int, int]] | None = None  # per sample: (start, count) into `cross`

    def with_cross_styles(self, index: dict[str, list[Path]], cache_dir: Path, key: str) -> MotionBank:
        """The bank with each Fluent sample's cross-style stills (data/cross_style.py: the emoji's stills in
        `index`, from `style_index`, aligned to its first stored phase's still), cached in cache_dir by `key`
        (which names the samples and the styles)."""
        from ..data.cross_style import cross_style_stills

        path = cache_dir / f"cross-{key}.safetensors"
        if path.is_file():
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                rows = json.loads(f.metadata()["rows"])
            self.cross, self.cross_rows = load_file(str(path))["stills"], [tuple(r) for r in rows]
            return self
        stills, rows = [], []
        for m in tqdm(self.metas, desc="cross-style stills", unit="clip"):
            found = (cross_style_stills(m.get("name", ""), self.stills[m["start"]].numpy(), index)
                     if m.get("source") == "fluent-anim" else [])  # an artist's motion belongs to its emoji
            rows.append((sum(len(x) for x in stills), len(found)))
            stills.append(found)
        flat = [x for found in stills for x in found]
        side = self.stills.shape[1]
        self.cross = torch.from_numpy(np.stack(flat)) if flat else torch.zeros((0, side, side, 4), dtype=torch.uint8)
        self.cross_rows = rows
        with atomic_path(path) as tmp:
            save_file({"stills": self.cross.contiguous()}, str(tmp), metadata={"rows": json.dumps(rows)})
        return self

    def with_consensus(self) -> MotionBank:
        """The bank with each sample's consensus target (motion/spectral.py consensus_volume over its stored
        phases), computed once in memory (~5 ms a clip)."""
        if self.consensus is None:
            rows = [torch.from_numpy(consensus_volume(self.volumes[m["start"]:m["start"] + m["count"]].float().numpy()))
                    for m in tqdm(self.metas, desc="consensus targets", unit="clip")]
            self.consensus = torch.stack(rows).half()
        return self

    @classmethod
    def build(cls, samples: list[Sample], resolution: int, cache_dir: Path) -> MotionBank:
        """Decode each sample's phase stills at `resolution`; cached per source by the samples' manifest rows
        (adding a source to a run reuses the banks of the others)."""
        samples = [s for s in samples if s.spectral is not None and s.meta.get("spectral")]
        if not samples:
            raise UserError("no motion targets in --data: prepare it with `stickers data prepare --motion-targets`")
        sources = sorted({s.meta.get("source", "") for s in samples})
        if len(sources) > 1:
            return cls.concat([cls.build([s for s in samples if s.meta.get("source", "") == src], resolution,
                                         cache_dir) for src in sources])
        path = cache_dir / f"motion-{resolution}-{cache_key(samples, resolution)}.safetensors"
        if path.is_file():
            return cls.load(path)
        stills, volumes, metas, start = [], [], [], 0
        for s in tqdm(samples, desc=f"motion bank {resolution}px", unit="clip"):
            try:
                vol = read_spectral(s.spectral)
                img = phase_stills(s.meta, s.data, resolution)
            except (AnimationReadError, ValueError) as e:
                print(f"skip {s.meta['key']}: {e}")
                continue
            stills.append(torch.from_numpy(img))
            volumes.append(torch.from_numpy(vol))
            metas.append({**s.meta, "start": start, "count": len(vol)})
            start += len(vol)
        if not metas:
            raise UserError("no readable motion samples in --data")
        bank = cls(torch.cat(stills), torch.cat(volumes), metas)
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"stills": bank.stills.contiguous(), "volumes": bank.volumes.contiguous()}, str(tmp),
                      metadata={"metas": json.dumps(metas)})
        return bank

    @classmethod
    def concat(cls, banks: list[MotionBank]) -> MotionBank:
        """One bank of several (consensus and cross-style rows are computed afterwards, on the whole)."""
        offsets = np.cumsum([0] + [len(b.volumes) for b in banks])
        metas = [{**m, "start": m["start"] + int(off)} for b, off in zip(banks, offsets) for m in b.metas]
        return cls(torch.cat([b.stills for b in banks]), torch.cat([b.volumes for b in banks]), metas)

    @classmethod
    def load(cls, path: Path) -> MotionBank:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            metas = json.loads(f.metadata()["metas"])
        t = load_file(str(path))
        return cls(t["stills"], t["volumes"], metas)

    def example(self, i: int, rng, stage: Stage):
        """(still (4, S, S) float in [0, 1], volume (4K, s, s) float, plan) of sample i by the loader's rules."""
        meta = self.metas[i]
        start, count = self.cross_rows[i] if self.cross_rows is not None else (0, 0)
        plan = plan_motion_example(meta, rng, 0.5, stage.drop_text, stage.drop_image, stage.drop_both, 0.5,
                                   count if stage.canonical_phase else 0, stage.p_cross_style, stage.p_fresh_motion)
        row = meta["start"] + plan.slot
        canonical = phase_is_canonical(meta, stage.canonical_phase)
        still = (self.stills[row] if plan.cross is None else self.cross[start + plan.cross]).numpy()
        if plan.fresh is not None:  # a procedural still with a motion drawn anew: its exact volume
            vol = fresh_volume(still, plan.fresh)
        else:  # canonical phase: every stored phase's still (and every cross-style still) is a view of one
            # target, the consensus of the clip
            vol = (self.with_consensus().consensus[i] if canonical else self.volumes[row]).float().numpy()
        still, vol = augment(still, vol, plan, canonical)
        return (torch.from_numpy(np.ascontiguousarray(still)).permute(2, 0, 1).float() / 255,  # (S,S,4) -> (4,S,S)
                torch.from_numpy(np.ascontiguousarray(vol)), plan)


class MotionTask(nn.Module):
    """x0/v/eps objective on normalised spectral volumes with IP2P conditioning and CFG dropout."""

    def __init__(self, net: MotionNet, bank: MotionBank, stage: Stage, text_encoders) -> None:
        super().__init__()
        self.net = net
        self.bank, self.stage = bank, stage
        self._text = lambda prompts: text_encoders(prompts)[0]  # frozen, kept out of the checkpoints
        self.groups, self.weights = source_groups(bank.metas, stage.data)
        self.scheduler = train_scheduler(net.cfg)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """(B, L, D) frozen text states (the encoders memoise prompts)."""
        return self._text(prompts).float()

    def make_batch(self, gen: torch.Generator) -> dict:
        stills, volumes, supports, prompts, drop_text, drop_image = [], [], [], [], [], []
        for _ in range(self.stage.batch_size):
            i = pick_sample(gen, self.groups, self.weights)
            still, vol, plan = self.bank.example(i, rng_from(gen), self.stage)
            stills.append(still)
            volumes.append(vol)
            alpha = alpha_on_grid(still[3].numpy(), vol.shape[-1])  # (s, s) at the volume's own grid
            supports.append(torch.from_numpy(motion_support(alpha, vol.numpy(), SUPPORT_DILATE))[None])
            prompts.append("" if plan.drop_text else plan.caption)
            drop_text.append(plan.drop_text)
            drop_image.append(plan.drop_image)
        volume = torch.stack(volumes)  # (B, 4K, s, s)
        cfg = self.net.cfg
        return {"still": torch.stack(stills), "volume": volume, "support": torch.stack(supports),  # (B, 1, s, s)
                "text": self.encode_text(prompts),
                "drop_image": torch.tensor(drop_image),
                "noise": torch.randn((len(volumes), cfg.channels, cfg.size, cfg.size), generator=gen),
                "t": high_noise_timesteps(len(volumes), self.scheduler.config.num_train_timesteps, gen)}

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        cfg = self.net.cfg
        volume, support = batch["volume"], batch["support"]
        if volume.shape[-1] != cfg.size:  # canvas units: a grid change is only a resampling
            volume = F.interpolate(volume, size=(cfg.size, cfg.size), mode="area")
            support = F.interpolate(support, size=(cfg.size, cfg.size), mode="area")
        z0 = normalise(volume, cfg.scales, cfg.gamma)
        z0 = z0 * support  # (B, 1, s, s): the target is zero where the sticker never shows (motion_support)
        zt = self.scheduler.add_noise(z0, batch["noise"], batch["t"])
        still = self.net.still_input(batch["still"], keep=~batch["drop_image"])
        pred = self.net(zt, batch["t"], still, batch["text"])
        weight = BACKGROUND_WEIGHT + support  # the sticker's motion, not the empty canvas, sets the loss
        loss = (((pred - target(self.scheduler, z0, batch["noise"], batch["t"])) ** 2) * weight).mean()
        return loss, {}


def _samples(stage: Stage, data: list[Path]) -> list[Sample]:
    return read_samples(data, "train", ("animated",), set(stage.data), stage.one_per_emoji)


def resolve_config(recipe: Recipe, stage: Stage, stage_dir: Path, bank: MotionBank,
                   base: MotionConfig | None = None) -> MotionConfig:
    """The run's MotionConfig: read back when the stage has started before (resume), else `base` (the
    --init model's, with the stage's prediction type: a model may be finetuned to another target), else the
    recipe's overrides, the stage's still size and prediction type, and scales fitted on the bank; written to
    RUN/<stage>/motion_config.json the first time."""
    path = stage_dir / CONFIG_FILE
    if path.is_file():
        return motion_config(json.loads(path.read_text()))
    cfg = (motion_config({**to_dict(base), "prediction_type": stage.prediction_type}) if base is not None
           else _fresh_config(recipe, stage, bank))
    stage_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(to_dict(cfg), indent=2))
    return cfg


def _fresh_config(recipe: Recipe, stage: Stage, bank: MotionBank) -> MotionConfig:
    patch = {**parse_overrides(recipe.model), "still_size": stage.resolution,
             "prediction_type": stage.prediction_type, "canonical_phase": stage.canonical_phase}
    cfg = motion_config(patch)
    vols = bank.with_consensus().consensus if stage.canonical_phase else bank.volumes
    idx = np.linspace(0, len(vols) - 1, min(512, len(vols))).astype(int)
    scales = fit_scales([vols[i].float().numpy() for i in idx])[:cfg.harmonics]
    return motion_config({**to_dict(cfg), "scales": scales})


def build_motion_stage(recipe: Recipe, stage: Stage, run_dir: Path, data: list[Path], init: Path | None = None
                       ) -> MotionTask:
    """The stage's task: bank (built or loaded from RUN/banks), config, network (fresh or `init`), text."""
    from ..models.text import load_text_encoders

    samples = _samples(stage, data)
    bank = MotionBank.build(samples, stage.resolution, run_dir / "banks")
    if stage.cross_styles:
        from ..data.cross_style import check_styles, style_index
        from ..data.sources import default_cache

        styles = tuple(sorted(check_styles(stage.cross_styles)))
        bank.with_cross_styles(style_index(default_cache(), styles), run_dir / "banks",
                               cache_key(samples, stage.resolution, *styles))
    start = load_motion_model(init) if init is not None else None
    cfg = resolve_config(recipe, stage, run_dir / stage.name, bank, start.cfg if start is not None else None)
    if cfg.canonical_phase != stage.canonical_phase:
        raise UserError(f"stage '{stage.name}': canonical_phase={stage.canonical_phase}, but the "
                        f"{'--init model' if start is not None else 'run'}'s {CONFIG_FILE} has "
                        f"canonical_phase={cfg.canonical_phase}: pass canonical_phase={cfg.canonical_phase} "
                        "or start a fresh run")
    torch.manual_seed(stage.seed)  # the same fresh weights on every rank and every restart
    net = MotionNet(cfg)
    if start is not None:
        if {**to_dict(start.cfg), "prediction_type": cfg.prediction_type} != to_dict(cfg):
            raise UserError(f"--init '{init}': its motion config differs from this run's {CONFIG_FILE}")
        net.load_state_dict(start.state_dict())
    return MotionTask(net, bank, stage, load_text_encoders([cfg.text]))


def run_motion_stage(recipe: Recipe, stage: Stage, run_dir: Path, data: list[Path], init: Path | None = None,
                     max_steps: int | None = None) -> Path | None:
    """Train the stage (resuming from its latest checkpoint); its model folder once complete, else None."""
    task = build_motion_stage(recipe, stage, run_dir, data, init)
    if train_stage(task, stage, run_dir / stage.name, max_steps=max_steps) < stage.steps:
        return None
    return save_motion_model(task.net.eval(), run_dir / stage.name / "model",
                             extra={"recipe": recipe.name, "trained_stage": to_dict(stage)})


def snapshot_motion_stage(recipe: Recipe, stage: Stage, run_dir: Path, data: list[Path], out: Path
                          ) -> tuple[Path, int]:
    """The EMA weights of the stage's latest checkpoint as a motion model folder (the run is untouched)."""
    task = build_motion_stage(recipe, stage, run_dir, data)
    step = load_ema_weights(task, stage, run_dir / stage.name)
    return save_motion_model(task.net.eval(), out, extra={"recipe": recipe.name, "trained_stage": to_dict(stage),
                                                          "snapshot_step": step}), step


def _bank_rows(path: Path, rows: list[int]) -> torch.Tensor:
    """Volumes of some rows of a cached MotionBank without loading the rest."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        sl = f.get_slice("volumes")
        return torch.stack([sl[r:r + 1][0] for r in rows]).float()


@torch.no_grad()
def heldout_probe(net: MotionNet, data: list[Path], cache_dir: Path, n: int = 24, steps: int = 20,
                  image_guidance: float = 1.0, text_guidance: float = 1.0, seed: int = 0,
                  train_bank: Path | None = None) -> dict:
    """A training-side check of a motion model on held-out clips (not the evaluation's criteria): for each
    of `n` held-out emoji, the volume sampled from its still and its name against the artist's, compared as
    motion-amplitude maps (motion/spectral.py motion_amplitude): median Pearson correlation ("where"),
    median ratio of mean amplitude ("how much"), and the same correlation against another emoji's artist
    motion (a chance level). With `train_bank` (a cached training MotionBank) also the name-retrieval
    baseline: the motion of the training clip whose name's mean MiniLM state is nearest."""
    from ..diffusion.motion import sample_spectral
    from ..models.text import load_text_encoders
    from ..motion.spectral import denormalise, motion_amplitude

    cfg = net.cfg
    samples = read_samples(data, "heldout", ("animated",), None, one_per_emoji=True)
    bank = MotionBank.build(samples, cfg.still_size, cache_dir)
    text = load_text_encoders([cfg.text])
    null = text([""])[0].float()
    gen = torch.Generator().manual_seed(seed)
    rows = list(range(min(n, len(bank.metas))))
    truth, pred = [], []
    for i in rows:
        meta = bank.metas[i]
        r = meta["start"]
        still = bank.stills[r].permute(2, 0, 1).float()[None] / 255  # (S,S,4) -> (1,4,S,S)
        vol = bank.volumes[r].float()[None]
        if vol.shape[-1] != cfg.size:
            vol = F.interpolate(vol, size=(cfg.size, cfg.size), mode="area")
        z = sample_spectral(net, still, text([meta.get("label") or meta.get("caption", "")])[0].float(), null,
                            steps, image_guidance, text_guidance, gen)
        truth.append(motion_amplitude(vol[0].numpy()))
        pred.append(motion_amplitude(denormalise(z[0], cfg.scales, cfg.gamma).numpy()))

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
        return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-12))

    k = len(rows)
    extra = {}
    if train_bank is not None:
        from safetensors import safe_open

        with safe_open(str(train_bank), "pt") as f:
            metas = json.loads(f.metadata()["metas"])
        first = {}
        for m in metas:  # one clip per name: its first stored phase
            first.setdefault(m.get("label") or m["key"], m["start"])
        names = sorted(first)
        emb = torch.cat([text(names[i:i + 64])[0].float().mean(1) for i in range(0, len(names), 64)])
        emb = F.normalize(emb, dim=-1)
        queries = F.normalize(torch.cat([text([bank.metas[i].get("label") or ""])[0].float().mean(1)
                                         for i in rows]), dim=-1)
        nearest = (queries @ emb.T).argmax(1).tolist()
        vols = _bank_rows(train_bank, [first[names[j]] for j in nearest])
        if vols.shape[-1] != cfg.size:
            vols = F.interpolate(vols, size=(cfg.size, cfg.size), mode="area")
        got = [motion_amplitude(v.numpy()) for v in vols]
        extra = {"retrieval_corr": float(np.median([corr(g, t) for g, t in zip(got, truth)])),
                 "retrieval_size_ratio": float(np.median([g.mean() / max(t.mean(), 1e-9)
                                                          for g, t in zip(got, truth)]))}
    return {"clips": k, **extra, "where_corr": float(np.median([corr(p, t) for p, t in zip(pred, truth)])),
            "size_ratio": float(np.median([p.mean() / max(t.mean(), 1e-9) for p, t in zip(pred, truth)])),
            "chance_corr": float(np.median([corr(truth[(j + 1) % k], truth[j]) for j in range(k)])),
            "pred_amplitude": float(np.median([p.mean() for p in pred])),
            "true_amplitude": float(np.median([t.mean() for t in truth]))}
