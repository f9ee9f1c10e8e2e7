"""Run a recipe stage by stage: build its data bank, its task, train, export a model folder.

Layout of a run directory:
    RUN/<stage>/checkpoint-N/   accelerate state (resume)      RUN/<stage>/metrics.jsonl
    RUN/<stage>/model/          the stage's result: a loadable model folder (EMA weights)
    RUN/banks/                  cached frame/latent banks      RUN/recipe.json (resolved)
Each stage starts from the previous stage's model folder (or `init` for the first one).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig, model_config, save_json, to_dict
from ..models.checkpoint import StickerModel, load_model, save_model
from . import sources
from .banks import FrameBank
from .loop import load_ema_weights, train_stage
from .recipes import Recipe, Stage
from .tasks import DiffusionTask, VAETask


def stage_model_dir(run_dir: Path, stage: Stage) -> Path:
    return run_dir / stage.name / "model"


def _previous(recipe: Recipe, stage: Stage, run_dir: Path, init: Path | None) -> StickerModel | None:
    i = [s.name for s in recipe.stages].index(stage.name)
    if i == 0:
        return load_model(init) if init else None
    prev = stage_model_dir(run_dir, recipe.stages[i - 1])
    if not (prev / "config.json").is_file():
        raise FileNotFoundError(f"stage '{stage.name}' needs stage '{recipe.stages[i - 1].name}' first "
                                f"(no model at {prev})")
    return load_model(prev)


@torch.no_grad()
def fit_scaling_factor(model: StickerModel, bank: FrameBank, n: int = 256) -> float:
    """1 / std of the VAE's latents, so diffusion sees unit-variance latents (as in LDM)."""
    idx = np.linspace(0, len(bank.frames) - 1, min(n, len(bank.frames))).astype(int)
    x = torch.from_numpy(bank.frames[idx]).permute(0, 3, 1, 2).float() / 255
    z = torch.cat([model.vae.latent(x[i:i + 32]) for i in range(0, len(x), 32)])
    return float(1.0 / z.std())


def build_stage(recipe: Recipe, stage: Stage, run_dir: Path, data_root: Path, init: Path | None = None
                ) -> tuple[StickerModel, torch.nn.Module, FrameBank | None]:
    """The stage's starting model and its task (data banks built or loaded from RUN/banks)."""
    cfg: ModelConfig = model_config(recipe.preset, overrides=recipe.model)
    cfg.resolution = stage.resolution
    cfg.prediction_type = stage.prediction_type
    model = _previous(recipe, stage, run_dir, init)
    if model is None:
        model = StickerModel.create(cfg, video=stage.kind == "video")
    else:  # keep the trained VAE scaling; take resolution/prediction from this stage
        model.cfg.resolution, model.cfg.prediction_type = stage.resolution, stage.prediction_type
        cfg = model.cfg
    if stage.kind == "video":
        cfg.video_target = stage.target
        model.sampling = dataclasses.replace(model.sampling, **recipe.sampling)
    model.unet.cfg = cfg
    banks_dir = run_dir / "banks"
    bank = None
    if stage.kind == "vae":
        bank = sources.vae_frames(data_root, stage.resolution, banks_dir)
        task = VAETask(model, bank, stage)
    else:
        if stage.kind == "video" and not model.unet.inflated:
            model.unet.inflate()  # identity-initialised temporal layers + zero-init IP2P channels
        banks = {name: sources.latent_bank(name, data_root, model, banks_dir) for name in stage.data}
        null = [t[0] for t in model.text([""])]
        task = DiffusionTask(model, banks, stage, null)
        if stage.gradient_checkpointing:
            model.unet.unet.enable_gradient_checkpointing()
    return model, task, bank


def run_stage(recipe: Recipe, stage: Stage, run_dir: Path, data_root: Path, init: Path | None = None,
              max_steps: int | None = None) -> Path | None:
    """Train one stage (resuming if interrupted); returns its model folder once the stage is complete."""
    model, task, bank = build_stage(recipe, stage, run_dir, data_root, init)
    if train_stage(task, stage, run_dir / stage.name, max_steps=max_steps) < stage.steps:
        return None
    if stage.kind == "vae":
        model.cfg.vae.scaling_factor = fit_scaling_factor(model, bank)
    out = save_model(model.eval(), stage_model_dir(run_dir, stage),
                     extra={"recipe": recipe.name, "trained_stage": to_dict(stage)})
    return out


def snapshot_stage(recipe: Recipe, stage: Stage, run_dir: Path, data_root: Path, out: Path,
                   init: Path | None = None) -> tuple[Path, int]:
    """Export the EMA weights of a stage's latest checkpoint as a model folder (look at a model while it
    trains); returns (folder, step). The run itself is not touched."""
    model, task, bank = build_stage(recipe, stage, run_dir, data_root, init)
    step = load_ema_weights(task, stage, run_dir / stage.name)
    if stage.kind == "vae":
        model.cfg.vae.scaling_factor = fit_scaling_factor(model, bank)
    return save_model(model.eval(), out, extra={"recipe": recipe.name, "trained_stage": to_dict(stage),
                                                "snapshot_step": step}), step


def run_recipe(recipe: Recipe, run_dir: Path, data_root: Path, only: str | None = None,
               init: Path | None = None, max_steps: int | None = None) -> list[Path]:
    """Run every stage not yet complete (or only `only`); returns the finished model folders."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json(recipe, run_dir / "recipe.json")
    done = []
    for stage in recipe.stages:
        if only and stage.name != only:
            continue
        if (stage_model_dir(run_dir, stage) / "config.json").is_file() and not only:
            done.append(stage_model_dir(run_dir, stage))
            continue
        out = run_stage(recipe, stage, run_dir, data_root, init, max_steps)
        if out is None:
            break  # budget used up mid-stage; rerun the same command to resume
        done.append(out)
    return done
