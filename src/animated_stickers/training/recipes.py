"""Recipes as data: a recipe is a list of stages (paper 3.1). Teachers differ only by recipe.

Each stage says what it trains (vae | t2i | video), at which resolution, with spatial weights
frozen or not, at which fps (4, 8 or 'dynamic' = motion buckets), with which prediction type, lr,
steps and data mix. The paper's example recipe is written below as-is (`paper-example`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, SamplingConfig, from_dict, load_yaml, merge, parse_overrides, to_dict
from ..data.loader import DROPOUT


@dataclass
class Stage:
    """One training stage."""

    name: str
    kind: str  # vae | t2i | video
    steps: int
    lr: float = 1e-4
    batch_size: int = 4
    grad_accum: int = 1
    resolution: int = 128
    crop: int = 0  # VAE: train on random crops of this size (0 = full frame)
    freeze_spatial: bool = False  # video: train only temporal layers (+ the widened conv_in)
    fps: str = "dynamic"  # "4", "8" or "dynamic" (motion bucketing, paper 3.1.1)
    prediction_type: str = "v_prediction"  # epsilon | v_prediction | sample (x0; motion stages only; v and
    # sample imply zero-terminal SNR)
    # middle | first | last | random (paper 3.1.2). "random" with the mask channel: any index conditions.
    cond_frame: str = "middle"
    target: str = "frames"  # video: frames | residual (ModelConfig.video_target)
    # CFG dropout (paper 2.1): text only, image only, both; the loader's rule (data/loader.py DROPOUT).
    drop_text: float = DROPOUT
    drop_image: float = DROPOUT
    drop_both: float = DROPOUT
    # Prepared sources (the samples' `source`: fluent-anim, fluent-3d, procedural, user, ...) -> mixing weight.
    data: dict[str, float] = field(default_factory=lambda: {"fluent-anim": 1.0, "user": 1.0})
    loops: bool = True  # whole-loop clips where a sample loops (data/loader.py plan_example)
    max_fps: float = 12.0  # clip grid rate (data/loader.py clip_grid)
    long_frames: int = 0  # video: also train on loops of this many frames (e.g. 16) ...
    long_share: float = 0.0  # ... in this share of the steps (batch scaled to the same frame count)
    one_per_emoji: bool = True  # one skin-tone variant per emoji (CPU budget; motions are the same)
    ema_decay: float = 0.999
    warmup: int = 100
    checkpoint_every: int = 250
    log_every: int = 10
    mixed_precision: str = "no"  # no | bf16 | fp16 (accelerate)
    gradient_checkpointing: bool = False
    seed: int = 0
    # Distillation stages (training/distill.py), kinds distill-guidance | distill-steps:
    student_steps: int = 0  # distill-steps: the student's DDIM steps (its teacher takes twice as many);
    # distill-consistency: the student's LCMScheduler steps
    max_image_guidance: float = 8.0  # sigma_I / sigma_T drawn from [1, max] for a guidance-embedded student
    max_text_guidance: float = 4.0
    # motion: train on canonical-phase volumes (motion/spectral.py canonical_phase; written into the model's
    # MotionConfig so sampling knows its volumes start at the canonical phase)
    canonical_phase: bool = False
    # motion: stills of the same emoji in these trained styles (data/cross_style.py), aligned to the clip's
    # still, are also views of its target, drawn with probability p_cross_style (needs canonical_phase)
    cross_styles: list[str] = field(default_factory=list)
    p_cross_style: float = 0.0
    # motion: a procedural clip's still gets a procedural motion drawn anew with this probability (its exact
    # volume, a caption naming it: data/motion_loader.py draw_fresh_motion), so the text alone says the motion
    p_fresh_motion: float = 0.0


@dataclass
class Recipe:
    """A named list of stages; `preset` names the model size; `model` holds config overrides."""

    name: str
    preset: str = "tiny"
    model: list[str] = field(default_factory=list)  # key=value overrides of ModelConfig
    sampling: dict = field(default_factory=dict)  # SamplingConfig defaults written into its video models
    stages: list[Stage] = field(default_factory=list)


def _stage(name: str, kind: str, steps: int, **kw) -> dict:
    return {"name": name, "kind": kw.pop("kind_", kind), "steps": steps, **kw}


SMOKE_DATA = {"procedural": 1.0, "fluent-anim": 1.0, "fluent-3d": 1.0, "user": 1.0}
STAGE_KINDS = ("vae", "t2i", "video", "decoder", "distill-guidance", "distill-steps", "distill-consistency",
               "motion")

RECIPES: dict[str, dict] = {
    # The default CPU model (this project's weights/tiny): 128 px canvas, 16x16 latents. The video stages
    # denoise residuals to the conditioning frame (ModelConfig.video_target): at 700 steps the same model
    # on whole frames still re-drew the sticker's colours as smears; on residuals they held.
    # Guidance off (1/1, one evaluation per step): measured on held-out clips at sigma_I/sigma_T 1/1 vs
    # 1.5/1.5, the all-criteria pass rate was 0.40 vs 0.33; the paper's 7.5/2 amplified residual errors.
    "tiny": {"name": "tiny", "preset": "tiny", "sampling": {"image_guidance": 1.0, "text_guidance": 1.0},
             "stages": [
        _stage("vae", "vae", 3500, lr=5e-4, batch_size=8, crop=64,
               data={"fluent-anim": 1.0, "fluent-3d": 1.0, "fluent-flat": 0.5, "openmoji": 0.5},
               warmup=50, ema_decay=0.995, checkpoint_every=100),
        _stage("t2i", "t2i", 500, lr=3e-4, batch_size=16, data={"fluent-3d": 1.0, "fluent-anim": 1.0},
               prediction_type="v_prediction", ema_decay=0.998),
        _stage("motion-pretrain", "video", 100, lr=3e-4, batch_size=4, freeze_spatial=True, fps="8",
               data={"procedural": 1.0}, ema_decay=0.995, target="residual", cond_frame="random"),
        _stage("fluent-finetune", "video", 2000, lr=2e-4, batch_size=4, freeze_spatial=False, fps="dynamic",
               data={"fluent-anim": 1.0}, ema_decay=0.998, target="residual", cond_frame="random"),
        # Loops, motion words and any conditioning index: whole-loop clips with a random roll, measured
        # motion captions (real clips) and exact ones (procedural clips covering the motion vocabulary),
        # a fifth of the steps on 16-frame loops.
        _stage("motion-loops", "video", 2000, lr=1e-4, batch_size=4, freeze_spatial=False, fps="dynamic",
               data={"fluent-anim": 0.5, "procedural": 0.5, "user": 1.0}, ema_decay=0.995, warmup=50,
               target="residual", cond_frame="random", long_frames=16, long_share=0.2),
        # Reference-guided decoder (models/decoder.py): detail from the sticker at 256 px.
        # `resolution` of a decoder stage is its output size; it trains the fusion net only (VAE frozen).
        _stage("decoder", "decoder", 400, lr=1e-3, batch_size=2, resolution=256,
               data={"fluent-anim": 1.0, "procedural": 1.0}, ema_decay=0.99, warmup=20, checkpoint_every=100),
        # Progressive step distillation last (paper 3.3.3, training/distill.py), on whichever video model
        # is final: DDIM 16 -> 8 -> 4 steps, one evaluation per step. Guidance distillation is not in the
        # default chain because the default sampling is unguided (sigma_I = sigma_T = 1: one forward).
        _stage("distill-8", "distill-steps", 300, lr=5e-5, batch_size=4, student_steps=8,
               data={"fluent-anim": 1.0, "procedural": 1.0}, ema_decay=0.99, warmup=20, checkpoint_every=50),
        _stage("distill-4", "distill-steps", 600, lr=5e-5, batch_size=4, student_steps=4,
               data={"fluent-anim": 1.0, "procedural": 1.0}, ema_decay=0.99, warmup=20, checkpoint_every=50),
    ]},
    # Issue 14's comparisons, from a finished tiny model (--init): consistency distillation to 4 LCM steps
    # and progressive 4 -> 2 steps (--init the distill-4 student). Measured in weights/tiny/MODEL_CARD.md.
    "tiny-distill-compare": {"name": "tiny-distill-compare", "preset": "tiny",
                             "sampling": {"image_guidance": 1.0, "text_guidance": 1.0}, "stages": [
        _stage("distill-lcm-4", "distill-consistency", 600, lr=5e-5, batch_size=4, student_steps=4,
               data={"fluent-anim": 1.0, "procedural": 1.0}, ema_decay=0.99, warmup=20, checkpoint_every=50),
        _stage("distill-2", "distill-steps", 300, lr=5e-5, batch_size=4, student_steps=2,
               data={"fluent-anim": 1.0, "procedural": 1.0}, ema_decay=0.99, warmup=20, checkpoint_every=50),
    ]},
    # Paper 3.1 example: [256p, freeze, 4 fps, eps] -> [512p, freeze, 4 fps, eps] -> [512p, unfreeze, 8 fps, v].
    "paper-example": {"name": "paper-example", "preset": "lg", "stages": [
        _stage("256p-freeze-4fps-eps", "video", 100000, resolution=256, freeze_spatial=True, fps="4",
               prediction_type="epsilon", batch_size=64),
        _stage("512p-freeze-4fps-eps", "video", 50000, resolution=512, freeze_spatial=True, fps="4",
               prediction_type="epsilon", batch_size=32),
        _stage("512p-unfreeze-8fps-v", "video", 50000, resolution=512, freeze_spatial=False, fps="8",
               prediction_type="v_prediction", batch_size=32),
    ]},
    # The learned motion model (issue 28, training/motion_task.py): still + text -> spectral volume (K = 4
    # loop harmonics of the flow at 64 px), a 4.7M-param UNet at 32x32 (patch 2), v-prediction with zero
    # terminal SNR. `model` holds MotionConfig overrides; `resolution` is the still's side. Needs data
    # prepared with --motion-targets. Skin-tone variants stay (one_per_emoji off): each has its own random
    # conditioning phases, so they are extra views of the motion. Targets are turned to a canonical loop
    # phase (canonical_phase: the still's phase is random, so otherwise the MSE optimum is ~0).
    # 0.45 s/step at batch 8 on one thread.
    "motion-tiny": {"name": "motion-tiny", "preset": "tiny", "stages": [
        _stage("motion", "motion", 20000, lr=3e-4, batch_size=8, resolution=128, prediction_type="sample",
               data={"fluent-anim": 1.0, "procedural": 0.8, "user": 1.0}, one_per_emoji=False,
               ema_decay=0.999, warmup=200, checkpoint_every=250, log_every=25, canonical_phase=True,
               cross_styles=["fluent-flat", "openmoji"], p_cross_style=0.35, p_fresh_motion=0.8),
    ]},
    # A 2-step smoke recipe of every stage kind at a toy size (tests and CI).
    "smoke": {"name": "smoke", "preset": "tiny",
              "model": ["resolution=32", "vae.block_out_channels=[8,16]", "vae.norm_num_groups=4",
                        "unet.block_out_channels=[16,32]", "unet.attention_blocks=[false,true]",
                        "unet.head_dim=8", "unet.norm_num_groups=4", "unet.cross_attention_dim=16",
                        "text.encoders=[{kind: minilm, max_length: 8}]"],
              "stages": [
                  _stage("vae", "vae", 2, batch_size=2, resolution=32, crop=16, checkpoint_every=1,
                         data=SMOKE_DATA),
                  _stage("t2i", "t2i", 2, batch_size=2, resolution=32, data=SMOKE_DATA, checkpoint_every=1),
                  _stage("video", "video", 2, batch_size=2, resolution=32, freeze_spatial=True, fps="8",
                         data=SMOKE_DATA, checkpoint_every=1, cond_frame="random", long_frames=16,
                         long_share=0.5),
                  _stage("decoder", "decoder", 2, batch_size=1, resolution=64, data=SMOKE_DATA, checkpoint_every=1),
              ]},
}


def get_recipe(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    """A built-in recipe by name or a YAML file, with `stages.N.key=value`-free dotted overrides."""
    if name_or_path in RECIPES:
        data = RECIPES[name_or_path]
    elif Path(name_or_path).suffix in (".yaml", ".yml", ".json"):
        data = load_yaml(name_or_path)
    else:
        raise ConfigError(f"unknown recipe '{name_or_path}'; expected one of {sorted(RECIPES)} or a YAML file")
    recipe = from_dict(Recipe, data)
    if overrides:
        # Overrides apply to every stage: e.g. `steps=2` or `batch_size=1`.
        patch = parse_overrides(overrides)
        recipe.stages = [from_dict(Stage, merge(to_dict(s), patch)) for s in recipe.stages]
    known = {f.name for f in dataclasses.fields(SamplingConfig)}
    unknown = set(recipe.sampling) - known
    if unknown:
        raise ConfigError(f"recipe sampling key '{min(unknown)}': expected some of {', '.join(sorted(known))}")
    for s in recipe.stages:
        if s.kind not in STAGE_KINDS:
            raise ConfigError(f"stage '{s.name}': kind '{s.kind}', expected one of {', '.join(STAGE_KINDS)}")
        if s.long_frames and not (s.long_frames >= 2 and 0 < s.long_share <= 1):
            raise ConfigError(f"stage '{s.name}': long_frames={s.long_frames}, long_share={s.long_share}: "
                              "expected long_frames >= 2 and 0 < long_share <= 1")
        if s.target not in ("frames", "residual"):
            raise ConfigError(f"stage '{s.name}': target '{s.target}', expected 'frames' or 'residual'")
        if s.fps not in ("4", "8", "dynamic"):
            raise ConfigError(f"stage '{s.name}': fps '{s.fps}', expected '4', '8' or 'dynamic'")
        if s.kind in ("distill-steps", "distill-consistency") and not 1 <= s.student_steps <= 500:
            raise ConfigError(f"stage '{s.name}': student_steps={s.student_steps}, expected 1 to 500 "
                              "(the student's DDIM steps; the teacher takes twice as many)")
    return recipe
