"""Sticker + prompt -> looping RGBA frames: the torch engine (paper 2.1, 3.1.2, 3.3.1).

AnimatePipeline.animate, step by step (onnx_pipeline.py runs the same steps with compiled graphs):
1. prepare each image (preprocess.py): RGBA, key a plain background if it has no alpha, fit it on
   the model's square canvas (aspect kept, transparent padding); the reference stickers at the output
   size (refdecode.py: the input's own size, 256-512 px);
2. c_I = VAE latent of each sticker (B, C, h, w); c_T = the prompt projected once per call
   (`unet.context_proj`), the null text = the projected "" prompt;
3. sample video latents (B, C, T, h, w) from per-sticker seeded noise with the chosen scheduler and
   IP2P dual guidance (three branches in one batched forward), adaptive after `guided_steps`; the
   conditioning frame (3 of 8, `clip_layout`) is anchored on c_I (diffusion/anchor.py); a `residual`
   model's output is added to c_I;
4. decode all B*T frames with the VAE (`decode_latents`), then, shared with the ONNX engine (finish.py):
5. render: the sticker moved along the decoded frames' motion (`warp`), or fused with them by the
   reference decoder (`fuse`), at the output size;
6. prompt motion: the global motion the prompt names applied exactly (prompt_motion.py), the sticker
   drawn smaller when it needs room;
7. each frame cropped and resized back to the input's size and aspect; with `paste_input` the
   conditioning frame is the input sticker itself.
Several stickers go through steps 2-5 as one batch; frame rate and file format come at export.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
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
from ..models.unet import make_cond_mask
from ..rgba import array_to_images, images_to_array
from .finish import Fuse, draw_frames, move_as_prompted, to_stickers
from .optimize import FastUNet, SpeedOptions, autocast
from .params import (  # noqa: F401 (re-exported)
    MAX_FRAMES,
    MAX_SEED,
    check_call,
    check_params,
    check_seeds,
    prompts_per_sticker,
    with_overrides,
)
from .params import clip_layout as params_layout
from .preprocess import Sticker, prepare_sticker
from .refdecode import references
from .resultcheck import check_finite, check_visible

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

    path = "video"  # the paper's latent video path (config.PATHS); motion_pipeline.MotionPipeline is the other

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
    def source(self) -> str:
        return self.model.source  # the folder it was loaded from; "" when built in memory

    @property
    def resolution(self) -> int:
        return self.model.cfg.resolution

    def layout(self, params: SamplingConfig) -> tuple[int, int]:
        return clip_layout(self.model.cfg, params)

    def describe(self) -> dict:
        """What /v1/info shows of the model."""
        cfg = self.model.cfg
        return {"name": cfg.name, "resolution": cfg.resolution, "num_frames": cfg.num_frames,
                "stage": self.model.stage, "path": self.path}

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
        prompts, params = check_call(prompts, params or self.model.sampling, len(stickers))
        # Frames at the input's own size (up to 512 px) where they can be (refdecode.py).
        reference, placements = references(self.model.decoder is not None, params.render, stickers,
                                           self.model.cfg.resolution)
        videos = self.make_video(to_tensor([s.canvas for s in stickers]), prompts, params, progress, reference)
        return to_stickers(videos, stickers, placements, self.layout(params)[1], params)

    # ------------------------------------------------------------------ steps
    @torch.no_grad()
    def make_video(self, canvases: torch.Tensor, prompts: list[str], params: SamplingConfig | None = None,
                       progress: Progress | None = None, reference: np.ndarray | None = None) -> np.ndarray:
        """Canvas stickers (B, 4, H, W) in [0, 1] + prompts -> videos (B, T, H, W, 4) straight RGBA with the
        prompt's motion (at the `reference` stickers' size (B, S, S, 4) when there are references)."""
        params = check_params(params or self.model.sampling)
        self.stats = {}
        with _timed(self.stats, "vae_encode_s"):
            image_latent = self.model.vae.encode(canvases)  # (B, C, h, w) c_I
        with _timed(self.stats, "text_encode_s"):
            cond = self.conditions(prompts, image_latent)
        with _timed(self.stats, "sampling_s"):
            latents = self.sample_latents(cond, params, progress)
        cond_frame = self.layout(params)[1]
        with _timed(self.stats, "vae_decode_s"):  # the VAE, then the render (finish.py)
            decoded = self.decode_latents(latents, params, native=reference is None)
            video = draw_frames(decoded, reference, cond_frame, params, self.flow_preset, self.fuse)
        source = f"model '{self.model.source or 'in memory'}'"
        check_finite(video, "frames", source)
        check_visible(video[..., 3], canvases[:, 3], [f"sticker {i + 1}" for i in range(len(video))], source)
        with _timed(self.stats, "prompt_motion_s"):  # the global motion the prompt names (prompt_motion.py)
            return move_as_prompted(video, prompts, cond_frame, params)

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

    def decode_latents(self, latents: torch.Tensor, params: SamplingConfig, native: bool) -> np.ndarray:
        """The VAE decoder (network): latents (B, C, T, h, w) -> straight RGBA (B, T, h, w, 4) in [0, 1];
        in the call's dtype when these are the frames (`native`: no render at the input's size follows)."""
        check_finite_latents(latents, self.model)
        with autocast(DTYPES[params.dtype]) if native else contextlib.nullcontext():
            video = self.model.vae.decode(latents).float()  # (B, 4, T, h, w)
        return video.permute(0, 2, 3, 4, 1).cpu().numpy()  # -> (B, T, h, w, 4)

    @property
    def flow_preset(self) -> str:
        """The DIS preset of the render's flow: the reference decoder's, else the default."""
        return self.model.decoder.cfg.flow_preset if self.model.decoder is not None else DEFAULT_PRESET

    @property
    def fuse(self) -> Fuse | None:
        """The reference decoder's fusion net (network) for the fuse render (finish.draw_frames), if any."""
        decoder = self.model.decoder
        if decoder is None:
            return None
        dtype = next(decoder.parameters()).dtype

        def run(low: np.ndarray, warped: np.ndarray, flow: np.ndarray) -> np.ndarray:
            frames = [torch.from_numpy(np.ascontiguousarray(x)).to(dtype) for x in (low, warped, flow)]
            return decoder.fuse_straight(*frames).float().numpy()

        return run


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
    def stills(self, prompts: list[str], params: SamplingConfig | None = None,
                 progress: Progress | None = None) -> list[Image.Image]:
        """One canvas-sized RGBA still per prompt (batched)."""
        params = check_params(params or self.model.sampling)
        prompts = [check_prompt(p) for p in prompts]
        check_seeds(params.seed, len(prompts), "seed=")
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
