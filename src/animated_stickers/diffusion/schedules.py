"""Noise schedules and prediction targets (paper 3.1): eps or v, zero-terminal-SNR with v.

The schedule itself is diffusers' (DDPMScheduler for training; its betas are shared with every
sampler built in diffusion/sampler.py), so training and sampling can never disagree.
"""

from __future__ import annotations

import torch
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

from ..config import ModelConfig


def scheduler_kwargs(cfg: ModelConfig) -> dict:
    """The schedule shared by training and all samplers (SD-style scaled-linear betas)."""
    return dict(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=cfg.prediction_type,
        # Zero terminal SNR whenever v is predicted (paper 3.1; Lin et al. 2024): the last step is
        # pure noise, so the model learns to make the whole image, not inherit low frequencies.
        # (the motion model's x0 prediction, "sample", keeps it too: at pure noise x0 is still defined)
        rescale_betas_zero_snr=cfg.zero_terminal_snr and cfg.prediction_type in ("v_prediction", "sample"),
    )


def train_scheduler(cfg: ModelConfig) -> DDPMScheduler:
    """The forward process q(z_t | z_0) used in training."""
    return DDPMScheduler(**scheduler_kwargs(cfg))


def target(scheduler: DDPMScheduler, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the network predicts: noise (eps), velocity v = alpha_t * eps - sigma_t * z0, or z0 ("sample")."""
    if scheduler.config.prediction_type == "epsilon":
        return noise
    if scheduler.config.prediction_type == "sample":
        return z0
    return scheduler.get_velocity(z0, noise, t)


def snr(scheduler: DDPMScheduler, t: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) at integer timesteps t."""
    ab = scheduler.alphas_cumprod.to(t.device)[t]
    return ab / (1 - ab).clamp_min(1e-8)


# --------------------------------------------------------------------------- inference time grids
# Added for sampling (diffusion/sampler.py); the training functions above are unchanged.


def logsnr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Half log-SNR lambda_t = log(alpha_t / sigma_t) per timestep (-inf where alpha_bar = 0)."""
    ab = alphas_cumprod.double()
    return 0.5 * (torch.log(ab) - torch.log1p(-ab))


def logsnr_timesteps(alphas_cumprod: torch.Tensor, steps: int, logsnr_min: float = -2.5) -> list[int]:
    """Integer timesteps, high noise first, spaced uniformly in logSNR (DPM-Solver, paper 3.3.1).

    The grid runs from max(lambda_{T-1}, logsnr_min) to lambda_0. With zero terminal SNR lambda_{T-1}
    is -inf and diffusers clamps it (alpha_bar = 2**-24, lambda = -8.3), so its `use_lu_lambdas`
    grid spends a third of 15 steps at t >= 983, where the latent is pure noise. Here the first
    step is the pure-noise timestep T-1 the model was trained on (needed for zero SNR), and the
    other steps - 1 are uniform in lambda over [logsnr_min, lambda_0]. `logsnr_min` = -2.5 gave the
    lowest 15-step ODE error on analytic Gaussian-mixture denoisers (tests/test_diffusion_schedules.py)
    and is close to the logSNR range of the classic SD schedule (lambda_999 = -2.7).
    """
    lam = logsnr(alphas_cumprod)
    last = len(lam) - 1
    if steps < 1:
        raise ValueError(f"steps={steps}: expected at least 1")
    if steps == 1:
        return [last]
    head = [last] if lam[last] < logsnr_min else []
    lo = max(float(lam[last]), logsnr_min)
    targets = torch.linspace(lo, float(lam[0]), steps - len(head), dtype=torch.float64)
    # lambda decreases with t: nearest integer t for each target lambda (exact sigma at the model's t).
    finite = torch.where(torch.isfinite(lam), lam, torch.full_like(lam, -1e9))
    ts = [int(torch.argmin((finite - x).abs())) for x in targets]
    grid = head + ts
    # Keep the count exact and strictly decreasing (near t = 0 several lambdas round to one t).
    for i in range(len(grid) - 2, -1, -1):
        grid[i] = max(grid[i], grid[i + 1] + 1)
    if grid[0] > last:
        raise ValueError(f"steps={steps}: more than the {last + 1} training timesteps allow")
    return grid
