"""Sticker + prompt -> 8 RGBA frames: the inference pipeline (paper 2.1, 3.1.2, 3.3.1).

AnimatePipeline.animate, step by step:
1. prepare each image (preprocess.py): RGBA, key a plain background if it has no alpha, fit it on
   the model's square canvas (aspect kept, transparent padding);
2. c_I = VAE latent of each sticker (B, C, h, w); c_T = the prompt projected once per call
   (`unet.context_proj`), the null text = the projected "" prompt;
3. sample video latents (B, C, T, h, w) from per-sticker seeded noise with the chosen scheduler and
   IP2P dual guidance (three branches in one batched forward), adaptive after `guided_steps`; frame
   `cfg.cond_frame` (the 4th of 8) is anchored on c_I (diffusion/anchor.py); a `residual` model's
   output is added to c_I;
4. decode all B*T frames with the VAE, crop/resize each frame back to the input's size;
5. with `paste_input`, frame `cfg.cond_frame` is replaced by the input sticker itself (keyed, at its
   own size); by default it stays the decoded frame, as sharp as its neighbours.
Several stickers go through steps 2-4 as one batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from PIL import Image

from ..checks import check_prompt
from ..config import SamplingConfig
from ..diffusion.anchor import anchor_frame
from ..diffusion.guidance import DualGuidance, IP2PConditions, TextGuidance
from ..diffusion.sampler import generators, initial_noise, make_scheduler, sample
from ..errors import UserError
from ..flow import DEFAULT_PRESET
from ..models.checkpoint import (
    DEFAULT_MODEL_DIR,
    ModelLoadError,
    StickerModel,
    check_finite_latents,
    load_model,
    read_config,
)
from ..models.decoder import decode_warp
from ..models.unet import make_cond_mask
from ..rgba import array_to_images, images_to_array, restore_from_square
from .optimize import FastUNet, SpeedOptions, autocast
from .params import MAX_FRAMES, MAX_SEED, check_params, prompts_per_sticker, with_overrides  # noqa: F401 (re-exported)
from .params import clip_layout as params_layout
from .preprocess import Sticker, prepare_sticker
from .promptmotion import apply_prompt_motion, makes_room
from .refdecode import references

Progress = Callable[[int, int], None]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}  # keys: params.DTYPE_NAMES


@contextlib.contextmanager
def _timed(stats: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    stats[key] = time.perf_counter() - t0


def load_stage_model(path: str | Path | None, stage: str, default: Path, flag: str = "--model") -> StickerModel:
    """Load a model folder of the given stage ('video' or 't2i'), with one-line errors."""
    folder = Path(path) if path else default
    if path is None and not (folder / "config.json").is_file():
        raise ModelLoadError(f"default model '{folder}' is missing: train it (stickers train) or pass {flag} DIR")
    got = read_config(folder).get("stage", "video")
    if got != stage:
        raise ModelLoadError(f"model folder '{folder}' holds a '{got}' model: expected a '{stage}' model")
    return load_model(folder)


def clip_layout(cfg, params: SamplingConfig) -> tuple[int, int]:
    """(frames, conditioning index) of a call: the params' choice, else the model's defaults."""
    return params_layout(params, cfg.num_frames, cfg.cond_frame)


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """RGBA PIL images (same size) -> (N, 4, H, W) float in [0, 1]."""
    return torch.from_numpy(images_to_array(images)).permute(0, 3, 1, 2).contiguous()  # (N, H, W, 4) ->


def to_images(frames: torch.Tensor) -> list[Image.Image]:
    """(N, 4, H, W) straight RGBA in [0, 1] -> RGBA PIL images."""
    return array_to_images(frames.permute(0, 2, 3, 1).float().cpu().numpy())  # -> (N, H, W, 4)


class AnimatePipeline:
    """Animate stickers with a video StickerModel; see the module docstring for the steps."""

    def __init__(self, model: StickerModel, speed: SpeedOptions | None = None,
                 batched_guidance: bool = True) -> None:
        if model.stage != "video":
            raise UserError(f"AnimatePipeline needs a video model, got a '{model.stage}' model")
        self.model = model.eval()
        self.speed = speed or SpeedOptions()
        self.batched_guidance = batched_guidance  # False: three forwards per guided step (naive baseline)
        self.net = FastUNet(model.unet, self.speed)
        self.stats: dict[str, float] = {}  # the last call: NFE, UNet calls, seconds per stage

    @classmethod
    def from_dir(cls, path: str | Path | None = None, speed: SpeedOptions | None = None) -> AnimatePipeline:
        """Load a model folder (None: the default `weights/tiny`)."""
        return cls(load_stage_model(path, "video", DEFAULT_MODEL_DIR), speed)

    # The same face as onnx_pipeline.OnnxPipeline: default settings, canvas and clip layout.
    @property
    def sampling(self) -> SamplingConfig:
        return self.model.sampling

    @property
    def resolution(self) -> int:
        return self.model.cfg.resolution

    def layout(self, params: SamplingConfig) -> tuple[int, int]:
        return clip_layout(self.model.cfg, params)

    # ------------------------------------------------------------------ public
    def animate(self, images: list[Image.Image], prompts: list[str], params: SamplingConfig | None = None,
                progress: Progress | None = None) -> list[list[Image.Image]]:
        """One batched call: per input, `num_frames` RGBA frames at the input's own size and aspect."""
        names = [getattr(im, "filename", "") or f"#{i + 1}" for i, im in enumerate(images)]
        stickers = [prepare_sticker(im, n, self.model.cfg.resolution) for im, n in zip(images, names)]
        return self.animate_stickers(stickers, prompts, params, progress)

    def animate_stickers(self, stickers: list[Sticker], prompts: list[str], params: SamplingConfig | None = None,
                         progress: Progress | None = None) -> list[list[Image.Image]]:
        """Like `animate` for already prepared stickers (preprocess.prepare_sticker)."""
        prompts = prompts_per_sticker(prompts, len(stickers))
        params = check_params(params or self.model.sampling)
        # Frames at the input's own size (up to 512 px) where they can be (refdecode.py).
        reference, placements = references(self.model.decoder is not None, params.render, stickers,
                                           self.model.cfg.resolution)
        if reference is not None:  # (B, S, S, 4) -> (B, 4, S, S)
            reference = torch.from_numpy(reference).permute(0, 3, 1, 2).contiguous()
        video = self.generate_video(to_tensor([s.canvas for s in stickers]), prompts, params, progress, reference)
        cond = clip_layout(self.model.cfg, params)[1]
        out = []
        for s, placement, frames in zip(stickers, placements, video):  # frames (4, T, H, W)
            seq = [restore_from_square(f, placement) for f in to_images(frames.transpose(0, 1))]
            if params.paste_input:
                seq[cond] = s.rgba.copy()
            out.append(seq)
        return out

    # ------------------------------------------------------------------ steps
    @torch.no_grad()
    def generate_video(self, canvases: torch.Tensor, prompts: list[str], params: SamplingConfig | None = None,
                       progress: Progress | None = None, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Canvas stickers (B, 4, H, W) in [0, 1] + prompts -> videos (B, 4, T, H, W) straight RGBA
        (at the `reference` stickers' size (B, 4, S, S) when the model has a reference decoder)."""
        params = check_params(params or self.model.sampling)
        self.stats = {}
        with _timed(self.stats, "vae_encode_s"):
            image_latent = self.model.vae.encode(canvases)  # (B, C, h, w) c_I
        with _timed(self.stats, "text_encode_s"):
            cond = self.conditions(prompts, image_latent)
        with _timed(self.stats, "sampling_s"):
            latents = self.sample_latents(cond, params, progress)
        with _timed(self.stats, "vae_decode_s"):
            video = self.decode(latents, params, reference)
        if not params.prompt_motion:
            return video
        with _timed(self.stats, "prompt_motion_s"):  # the global motion the prompt names (promptmotion.py)
            return apply_prompt_motion(video, prompts, clip_layout(self.model.cfg, params)[1], makes_room(params))

    def conditions(self, prompts: list[str], image_latent: torch.Tensor) -> IP2PConditions:
        """Text encoded and projected once per call (not per frame, not per step)."""
        states = self.model.text(list(prompts) + [""])
        context = self.model.unet.context_proj(states)  # (B + 1, L, D)
        null = context[-1:].expand(len(prompts), -1, -1)
        return IP2PConditions(context=context[:-1], null_context=null, image_latent=image_latent)

    def sample_latents(self, cond: IP2PConditions, params: SamplingConfig,
                       progress: Progress | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Video latents (B, C, T, h, w) from seeded noise (or the given x_T) with IP2P + adaptive
        guidance."""
        cfg = self.model.cfg
        b, c, h, w = cond.image_latent.shape
        seeds = [params.seed + i for i in range(b)]
        scheduler = make_scheduler(cfg, params.scheduler, params.steps)
        guidance = DualGuidance(params.image_guidance, params.text_guidance, params.guided_steps,
                                self.batched_guidance, embedded=self.model.unet.guidance_embedded)
        self.net.dtype = DTYPES[params.dtype]
        frames, cond_index = clip_layout(cfg, params)
        if cfg.unet.cond_mask:  # tell the network which frame is the sticker
            cond = dataclasses.replace(cond, cond_mask=make_cond_mask(b, frames, cond_index))
        if noise is None:
            noise = initial_noise((b, c, frames, h, w), seeds)
        self.net.calls.clear()
        residual = cfg.video_target == "residual"
        # The conditioning frame's clean value when anchored: the sticker, or a zero residual.
        clean = torch.zeros_like(cond.image_latent) if residual else cond.image_latent

        def denoise(x: torch.Tensor, t: torch.Tensor, i: int) -> torch.Tensor:
            pred = guidance(self.net, x, t, cond, i)
            if not params.anchor:
                return pred
            return anchor_frame(pred, x, t, clean, cond_index, scheduler.alphas_cumprod,
                                scheduler.config.prediction_type)

        latents = sample(denoise, scheduler, noise, generator=generators(seeds), callback=progress)
        if residual:
            latents = latents + cond.image_latent[:, :, None]
        self.stats.update(nfe=guidance.nfe, forwards=guidance.forwards, steps=len(scheduler.timesteps),
                          unet_s=sum(sec for _, sec in self.net.calls))
        return latents

    def decode(self, latents: torch.Tensor, params: SamplingConfig, reference: torch.Tensor | None = None
               ) -> torch.Tensor:
        """Latents (B, C, T, h, w) -> straight RGBA (B, 4, T, H, W) in [0, 1]."""
        check_finite_latents(latents, self.model)
        cond = clip_layout(self.model.cfg, params)[1]
        if reference is not None and params.render == "warp":
            preset = self.model.decoder.cfg.flow_preset if self.model.decoder is not None else DEFAULT_PRESET
            return decode_warp(self.model.vae, latents, reference, cond, params.harmonics, preset)
        if reference is not None and self.model.decoder is not None:
            return self.model.decoder.decode(self.model.vae, latents, reference, cond)
        with autocast(DTYPES[params.dtype]):
            return self.model.vae.decode(latents).float()


class TextToImagePipeline:
    """Prompt -> one still RGBA sticker with a text-to-image StickerModel (text CFG, no image)."""

    def __init__(self, model: StickerModel, speed: SpeedOptions | None = None) -> None:
        if model.stage != "t2i":
            raise UserError(f"TextToImagePipeline needs a text-to-image model, got a '{model.stage}' model")
        self.model = model.eval()
        self.net = FastUNet(model.unet, speed or SpeedOptions())

    @classmethod
    def from_dir(cls, path: str | Path | None = None, speed: SpeedOptions | None = None) -> TextToImagePipeline:
        """Load a t2i model folder (None: `weights/tiny-t2i`)."""
        return cls(load_stage_model(path, "t2i", DEFAULT_MODEL_DIR.parent / "tiny-t2i", "--t2i-model"), speed)

    @torch.no_grad()
    def generate(self, prompts: list[str], params: SamplingConfig | None = None,
                 progress: Progress | None = None) -> list[Image.Image]:
        """One canvas-sized RGBA still per prompt (batched)."""
        params = check_params(params or self.model.sampling)
        prompts = [check_prompt(p) for p in prompts]
        cfg = self.model.cfg
        context = self.model.unet.context_proj(self.model.text(list(prompts) + [""]))
        null = context[-1:].expand(len(prompts), -1, -1)
        seeds = [params.seed + i for i in range(len(prompts))]
        scheduler = make_scheduler(cfg, params.scheduler, params.steps)
        guidance = TextGuidance(params.text_guidance)
        self.net.dtype = DTYPES[params.dtype]
        noise = initial_noise((len(prompts), cfg.vae.latent_channels, 1, cfg.latent_size, cfg.latent_size), seeds)
        self.net.calls.clear()
        latents = sample(lambda x, t, i: guidance(self.net, x, t, context[:-1], null, i), scheduler, noise,
                         generator=generators(seeds), callback=progress)
        check_finite_latents(latents, self.model)
        with autocast(DTYPES[params.dtype]):
            rgba = self.model.vae.decode(latents[:, :, 0]).float()
        return to_images(rgba)
