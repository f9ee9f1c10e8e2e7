"""Classifier-free guidance as small objects beside the network (paper 2.1 eq. 1-3, 3.3.1).

The network is any `Denoiser`: (x (B, C, T, h, w), t (B,), context (B, L, D), image_latent (B, C, h, w),
cond_mask (B, T) or None) -> prediction in the model's own parameterisation (eps or v). Guidance is a
linear combination whose weights sum to 1, and eps and v are affine in each other for a fixed x_t, so
guiding v equals guiding eps: no conversion is needed.

NFE counts UNet evaluations per sticker (one per branch), however they are batched: a guided step
costs 3, an unguided one 1, so DDIM 50 with full guidance = 150 and DPM 15 with k = 8 = 8*3 + 7 = 31.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Denoiser = Callable[..., torch.Tensor]  # (x, t, context, image_latent | None[, cond_mask]) -> prediction


def ip2p_combine(pred_uncond: torch.Tensor, pred_image: torch.Tensor, pred_full: torch.Tensor,
                 image_scale: float, text_scale: float) -> torch.Tensor:
    """Eq. 1-3: e(z,0,0) + s_I (e(z,c_I,0) - e(z,0,0)) + s_T (e(z,c_I,c_T) - e(z,c_I,0))."""
    return pred_uncond + image_scale * (pred_image - pred_uncond) + text_scale * (pred_full - pred_image)


def cfg_combine(pred_uncond: torch.Tensor, pred_cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Single-condition classifier-free guidance: e(z,0) + s (e(z,c) - e(z,0))."""
    return pred_uncond + scale * (pred_cond - pred_uncond)


@dataclass
class IP2PConditions:
    """The conditioning of B stickers: projected prompt, projected null prompt, sticker latent."""

    context: torch.Tensor  # (B, L, D) c_T
    null_context: torch.Tensor  # (B, L, D) text condition dropped ("" prompt)
    image_latent: torch.Tensor  # (B, C, h, w) c_I; zeros are the dropped image condition
    cond_mask: torch.Tensor | None = None  # (B, T), 1 at the conditioning frame (None: the model's default)

    def mask_args(self, repeat: int = 1) -> tuple[torch.Tensor, ...]:
        """The mask as an extra network argument, repeated for batched branches; () without one."""
        return () if self.cond_mask is None else (self.cond_mask.repeat(repeat, 1),)

    def __post_init__(self) -> None:
        b = self.image_latent.shape[0]
        if self.context.shape[0] != b or self.null_context.shape[0] != b:
            raise ValueError(f"conditions for {self.context.shape[0]}/{self.null_context.shape[0]} prompts "
                             f"and {b} images: expected one of each per sticker")


@dataclass
class DualGuidance:
    """IP2P image+text guidance with adaptive guidance (full for the first `guided_steps` steps).

    `batched=True` evaluates the three branches as one (3B) forward; False makes three forwards
    (the naive baseline). `guided_steps=None` guides every step; 0 never does (1 eval per step).
    Scales 1/1 make eq. 1-3 the conditional prediction, so then no extra branch is evaluated.
    `embedded=True` (a guidance-distilled student, training/distill.py): the network takes the scales
    as an input and gives the guided prediction in ONE evaluation (scales 1/1 after `guided_steps`).
    """

    image_scale: float = 7.5
    text_scale: float = 2.0
    guided_steps: int | None = None
    batched: bool = True
    embedded: bool = False
    nfe: int = 0  # UNet evaluations per sticker so far
    forwards: int = 0  # network calls so far

    def is_guided(self, step: int) -> bool:
        """Whether step `step` (0-based) uses the three branches."""
        if self.image_scale == 1.0 and self.text_scale == 1.0:
            return False
        return self.guided_steps is None or step < self.guided_steps

    def __call__(self, net: Denoiser, x: torch.Tensor, t: torch.Tensor, cond: IP2PConditions,
                 step: int) -> torch.Tensor:
        """The guided prediction for latents x (B, C, T, h, w) at timestep t."""
        b = x.shape[0]
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(b)
        if self.embedded:
            self.nfe += 1
            self.forwards += 1
            scales = (self.image_scale, self.text_scale) if self.is_guided(step) else (1.0, 1.0)
            guidance = torch.tensor(scales, device=x.device).expand(b, 2)
            return net(x, t, cond.context, cond.image_latent, cond.cond_mask, guidance)
        if not self.is_guided(step):
            self.nfe += 1
            self.forwards += 1
            return net(x, t, cond.context, cond.image_latent, *cond.mask_args())
        null_image = torch.zeros_like(cond.image_latent)
        # Branches in order: (no image, no text), (image, no text), (image, text).
        contexts = (cond.null_context, cond.null_context, cond.context)
        images = (null_image, cond.image_latent, cond.image_latent)
        self.nfe += 3
        if self.batched:
            self.forwards += 1
            out = net(torch.cat([x] * 3), t.repeat(3), torch.cat(contexts), torch.cat(images), *cond.mask_args(3))
            pred_uncond, pred_image, pred_full = out.chunk(3)
        else:
            self.forwards += 3
            pred_uncond, pred_image, pred_full = (net(x, t, c, i, *cond.mask_args()) for c, i in zip(contexts, images))
        return ip2p_combine(pred_uncond, pred_image, pred_full, self.image_scale, self.text_scale)


@dataclass
class TextGuidance:
    """Text-only classifier-free guidance for the text-to-image stage (batched 2B forward)."""

    scale: float = 7.5
    nfe: int = 0
    forwards: int = 0

    def __call__(self, net: Denoiser, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                 null_context: torch.Tensor, step: int) -> torch.Tensor:
        """The guided prediction for x (B, C, 1, h, w); no image condition."""
        b = x.shape[0]
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(b)
        self.forwards += 1
        if self.scale == 1.0:
            self.nfe += 1
            return net(x, t, context, None)
        self.nfe += 2
        pred_uncond, pred_cond = net(torch.cat([x, x]), t.repeat(2), torch.cat([null_context, context]),
                                     None).chunk(2)
        return cfg_combine(pred_uncond, pred_cond, self.scale)
