"""Sampling the motion model (models/motion_net.py): DDIM over the normalised spectral volume with IP2P
dual classifier-free guidance (paper 2.1 eq. 1-3; the same `ip2p_combine` as the video path).

The schedule is diffusion/schedules.py's (`scheduler_kwargs` reads the MotionConfig's schedule fields),
so training and sampling share betas; with zero terminal SNR and trailing spacing the result is the last
step's x0 prediction (FACTS: DDIM's last `prev_sample` still carries noise).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from ..motion.spectral import reach_px
from .guidance import ip2p_combine
from .schedules import scheduler_kwargs


@torch.no_grad()
def sample_spectral(net, still: torch.Tensor, text: torch.Tensor, null_text: torch.Tensor, steps: int = 20,
                    image_guidance: float = 1.0, text_guidance: float = 1.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Straight RGBA stills (B, 4, S, S), text states (B, L, D) and the "" states (B, L, D) -> normalised
    spectral volumes (B, 4K, s, s) cut spectral.reach_px around the stills (MotionNet.support); motion/spectral.py
    sampled_field makes each the field to render, as the engines do. Guidance 1/1 is
    one network evaluation per step; anything else batches the three IP2P branches."""
    cfg = net.cfg
    sched = DDIMScheduler(**scheduler_kwargs(cfg), timestep_spacing="trailing", clip_sample=False,
                          set_alpha_to_one=False)
    sched.set_timesteps(steps)
    b = still.shape[0]
    cond = net.still_input(still)  # (B, 4f², s, s)
    x = torch.randn((b, cfg.channels, cfg.size, cfg.size), generator=generator)
    guided = not (image_guidance == 1.0 and text_guidance == 1.0)
    x0 = x
    for t in sched.timesteps:
        tt = torch.full((b,), int(t), dtype=torch.long)
        if guided:  # branches (no image, no text), (image, no text), (image, text) in one batch
            pred = net(x.repeat(3, 1, 1, 1), tt.repeat(3), torch.cat([torch.zeros_like(cond), cond, cond]),
                       torch.cat([null_text, null_text, text]))
            pred = ip2p_combine(*pred.chunk(3), image_guidance, text_guidance)
        else:
            pred = net(x, tt, cond, text)
        out = sched.step(pred, t, x)
        x, x0 = out.prev_sample, out.pred_original_sample
    return x0 * net.support(still, reach_px(cfg.size))  # (B, 4K, s, s): no flow far out on empty canvas
