"""Run a recipe stage by stage: read prepared data, build the stage's task, train, export a model folder.

Layout of a run directory:
    RUN/<stage>/checkpoint-N/   training state (resume)        RUN/<stage>/metrics.jsonl
    RUN/<stage>/model/          the stage's result: a loadable model folder (EMA weights)
    RUN/banks/                  cached latents/frames of the prepared data   RUN/recipe.json (resolved)
Each stage starts from the previous stage's model folder (or `init` for the first stage run).
Data arrives only through prepared shards (`--data DIR`, see training/banks.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig, model_config, save_json, to_dict
from ..data.loader import LoaderConfig
from ..errors import UserError
from ..models.checkpoint import StickerModel, load_model, save_model
from .banks import FrameBank, LatentBank, PixelClips, read_samples, source_groups
from .loop import load_ema_weights, train_stage
from .recipes import Recipe, Stage
from .tasks import DiffusionTask, VAETask


def stage_model_dir(run_dir: Path, stage: Stage) -> Path:
    return run_dir / stage.name / "model"


def _previous(recipe: Recipe, stage: Stage, run_dir: Path, init: Path | None) -> StickerModel | None:
    """The model this stage starts from: `init` when given (the first stage of this call), else the
    previous stage's result (none for a recipe's first stage)."""
    if init is not None:
        return load_model(init)
    i = [s.name for s in recipe.stages].index(stage.name)
    if i == 0:
        return None
    prev = stage_model_dir(run_dir, recipe.stages[i - 1])
    if not (prev / "config.json").is_file():
        raise FileNotFoundError(f"stage '{stage.name}' needs stage '{recipe.stages[i - 1].name}' first "
                                f"(no model at {prev}), or --init MODEL")
    return load_model(prev)


def stage_config(recipe: Recipe, stage: Stage, base: ModelConfig | None) -> ModelConfig:
    """The stage's model config: the recipe preset (or the starting model's config) plus the stage's
    overrides, through the one validated constructor. A decoder stage keeps its starting model's config
    (its `resolution` is the decoder's output size, not the model canvas)."""
    patch: dict = {"prediction_type": stage.prediction_type}
    if stage.kind != "decoder":
        patch["resolution"] = stage.resolution
    if stage.kind == "video":
        patch["video_target"] = stage.target
    if base is None:
        return model_config(recipe.preset, overrides=recipe.model + [f"{k}={v}" for k, v in patch.items()])
    return model_config(base=base, overrides={} if stage.kind == "decoder" else patch)


def loader_config(stage: Stage, resolution: int) -> LoaderConfig:
    """The data loader's settings for a stage: the same rules the streaming loader uses."""
    return LoaderConfig(data="", resolution=resolution, num_frames=8, fps=stage.fps if stage.fps == "dynamic"
                        else float(stage.fps), cond_mode=stage.cond_frame, p_drop_text=stage.drop_text,
                        p_drop_image=stage.drop_image, p_drop_both=stage.drop_both, loop_clips=stage.loops,
                        max_fps=stage.max_fps, seed=stage.seed)


def fit_scaling_factor(model: StickerModel, bank: FrameBank, n: int = 256) -> float:
    """1 / std of the VAE's latents, so diffusion sees unit-variance latents (as in LDM)."""
    idx = np.linspace(0, len(bank.frames) - 1, min(n, len(bank.frames))).astype(int)
    x = torch.from_numpy(bank.frames[idx]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        z = torch.cat([model.vae.latent(x[i:i + 32]) for i in range(0, len(x), 32)])
    return float(1.0 / z.std())


def _kinds(stage: Stage) -> tuple[str, ...]:
    return ("animated",) if stage.kind in ("video", "decoder") or stage.kind.startswith("distill-") \
        else ("animated", "still")


def build_stage(recipe: Recipe, stage: Stage, run_dir: Path, data: list[Path], init: Path | None = None
                ) -> tuple[StickerModel, torch.nn.Module, FrameBank | None]:
    """The stage's starting model and its task (data caches built or loaded from RUN/banks)."""
    start = _previous(recipe, stage, run_dir, init)
    cfg = stage_config(recipe, stage, start.cfg if start is not None else None)
    if start is None:
        model = StickerModel.create(cfg, video=stage.kind == "video")
    else:
        model = with_config(start, cfg)
    if stage.kind.startswith("distill-"):  # training/distill.py (guidance embedding switched on)
        from .distill import distill_config

        model = with_config(model, distill_config(model, stage))
    if stage.kind == "video":
        model.sampling = dataclasses.replace(model.sampling, **recipe.sampling)
    banks_dir = run_dir / "banks"
    bank = None
    if stage.kind in ("vae", "decoder"):
        samples = read_samples(data, "train", _kinds(stage), set(stage.data), stage.one_per_emoji)
    if stage.kind == "vae":
        bank = FrameBank.build(samples, loader_config(stage, stage.resolution), 4, banks_dir)
        task = VAETask(model, bank, stage)
    elif stage.kind == "decoder":
        from ..models.decoder import ReferenceDecoder
        from .decoder_task import DecoderTask

        if model.decoder is None:
            model.decoder = ReferenceDecoder()  # zero-init fusion: starts as decode-and-upscale
        loader = loader_config(stage, stage.resolution)  # the decoder's output size (reference and targets)
        clips = PixelClips(samples, loader, *source_groups([s.meta for s in samples], stage.data))
        task = DecoderTask(model.vae, model.decoder, clips, batch_size=stage.batch_size,
                           canvas=model.cfg.resolution)
    else:
        if stage.kind == "video" and not model.unet.inflated:
            model.unet.inflate()  # identity-initialised temporal layers + zero-init IP2P channels
        vae = model.vae.eval()
        loader, tag = loader_config(stage, model.cfg.resolution), vae_tag(model)
        # One cache per --data folder, of all its sources: adding a folder encodes only that folder, and
        # stages that mix the sources differently share it (the task picks sources by weight).
        per_folder = [read_samples([d], "train", _kinds(stage), None, stage.one_per_emoji) for d in data]
        if not any(per_folder):
            raise UserError(f"stage '{stage.name}': no training samples in --data")
        latents = LatentBank.concat([LatentBank.build(s, loader, vae.encode, banks_dir, tag)
                                     for s in per_folder if s])
        if stage.kind.startswith("distill-"):
            from .distill import distill_task

            task = distill_task(model, latents, stage, loader)
        else:
            task = DiffusionTask(model, latents, stage, loader)
        if stage.gradient_checkpointing:
            model.unet.unet.enable_gradient_checkpointing()
    return model, task, bank


@torch.no_grad()
def vae_tag(model: StickerModel) -> str:
    """A fingerprint of the VAE weights and scaling (latent caches are only valid for one VAE)."""
    s = sum(float(p.double().sum()) for p in model.vae.parameters())
    return f"{s:.6e}-{model.cfg.vae.scaling_factor:.5f}"


def run_stage(recipe: Recipe, stage: Stage, run_dir: Path, data: list[Path], init: Path | None = None,
              max_steps: int | None = None) -> Path | None:
    """Train one stage (resuming if interrupted); returns its model folder once the stage is complete."""
    if stage.kind == "motion":  # the learned motion model: its own network and model folder
        from .motion_task import run_motion_stage

        return run_motion_stage(recipe, stage, run_dir, data, init, max_steps)
    model, task, bank = build_stage(recipe, stage, run_dir, data, init)
    if train_stage(task, stage, run_dir / stage.name, max_steps=max_steps) < stage.steps:
        return None
    if stage.kind == "vae":
        model = _with_scaling(model, fit_scaling_factor(model, bank))
    return save_model(model.eval(), stage_model_dir(run_dir, stage),
                      extra={"recipe": recipe.name, "trained_stage": to_dict(stage)})


def with_config(model: StickerModel, cfg: ModelConfig) -> StickerModel:
    """The model under a new (validated) config; its modules read theirs at forward time."""
    model.unet.cfg, model.vae.cfg = cfg, cfg.vae
    return dataclasses.replace(model, cfg=cfg)


def _with_scaling(model: StickerModel, factor: float) -> StickerModel:
    return with_config(model, model_config(base=model.cfg, overrides={"vae": {"scaling_factor": factor}}))


def snapshot_stage(recipe: Recipe, stage: Stage, run_dir: Path, data: list[Path], out: Path,
                   init: Path | None = None) -> tuple[Path, int]:
    """Export the EMA weights of a stage's latest checkpoint as a model folder (look at a model while it
    trains); returns (folder, step). The run itself is not touched."""
    if stage.kind == "motion":
        from .motion_task import snapshot_motion_stage

        return snapshot_motion_stage(recipe, stage, run_dir, data, out)
    model, task, bank = build_stage(recipe, stage, run_dir, data, init)
    step = load_ema_weights(task, stage, run_dir / stage.name)
    if stage.kind == "vae":
        model = _with_scaling(model, fit_scaling_factor(model, bank))
    return save_model(model.eval(), out, extra={"recipe": recipe.name, "trained_stage": to_dict(stage),
                                                "snapshot_step": step}), step


def run_recipe(recipe: Recipe, run_dir: Path, data: list[Path], only: str | None = None,
               init: Path | None = None, max_steps: int | None = None) -> list[Path]:
    """Run every stage not yet complete (or only `only`); returns the finished model folders.
    `init` starts the first stage this call runs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json(recipe, run_dir / "recipe.json")
    done = []
    for stage in recipe.stages:
        if only and stage.name != only:
            continue
        if (stage_model_dir(run_dir, stage) / "config.json").is_file() and not only:
            done.append(stage_model_dir(run_dir, stage))
            continue
        out = run_stage(recipe, stage, run_dir, data, init, max_steps)
        init = None  # later stages start from their predecessor
        if out is None:
            break  # budget used up mid-stage; rerun the same command to resume
        done.append(out)
    return done
