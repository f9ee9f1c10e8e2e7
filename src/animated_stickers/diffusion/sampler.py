"""The sampling loop over a diffusers scheduler (solvers are diffusers'; nothing is re-implemented).

Schedulers share the training betas (schedules.scheduler_kwargs: eps or v, zero terminal SNR):
- "dpm":    DPM-Solver++(2M), timesteps uniform in logSNR with the zero-SNR fix
            (schedules.logsnr_timesteps), final sigma 0. The default (paper 3.3.1).
- "dpm-lu": the same solver on diffusers' own `use_lu_lambdas` grid (for comparison: with zero SNR
            it spends ~1/3 of the steps at t >= 983).
- "ddim":   DDIM (eta 0), trailing spacing (the first step at t = 999, pure noise with zero SNR); the
            result is the last step's predicted x0 (the last prev_sample carries noise whenever the
            final alpha_bar is not 1, e.g. `set_alpha_to_one=False`).
- "ddpm":   ancestral DDPM, trailing spacing, noise from the given generators.
- "lcm":    LCMScheduler multistep consistency sampling (for a `distill-consistency` student,
            training/distill.py): its grid is `LCM_GRID` teacher steps, the first at t = 999.
No clipping anywhere: latents are not bounded to [-1, 1].
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..config import SCHEDULERS, ModelConfig
from .noise import seeded_normal
from .schedules import logsnr_timesteps, scheduler_kwargs, train_scheduler

if TYPE_CHECKING:
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

LCM_GRID = 50  # the teacher's DDIM grid a consistency student is distilled on (skipping step 1000 // 50)

# denoise(x_in, t, step_index) -> model output in the scheduler's prediction type.
DenoiseFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def make_scheduler(cfg: ModelConfig, name: str = "dpm", steps: int = 15) -> SchedulerMixin:
    """A fresh scheduler (they are stateful) with its `steps` timesteps set."""
    kw = scheduler_kwargs(cfg)
    if steps < 1:
        raise ValueError(f"steps={steps}: expected at least 1")
    # Each solver's own module, imported when used (cold start: the DPM module pulls in scipy.stats).
    if name in ("dpm", "dpm-lu"):
        from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler

        s = DPMSolverMultistepScheduler(**kw, algorithm_type="dpmsolver++", solver_order=2,
                                        final_sigmas_type="zero", use_lu_lambdas=name == "dpm-lu")
        if name == "dpm-lu":
            s.set_timesteps(steps)
        else:
            s.set_timesteps(timesteps=logsnr_timesteps(train_scheduler(cfg).alphas_cumprod, steps))
    elif name == "ddim":
        from diffusers.schedulers.scheduling_ddim import DDIMScheduler

        s = DDIMScheduler(**kw, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
        s.set_timesteps(steps)
    elif name == "ddpm":
        from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

        s = DDPMScheduler(**kw, clip_sample=False, timestep_spacing="trailing")
        s.set_timesteps(steps)
    elif name == "lcm":
        from diffusers.schedulers.scheduling_lcm import LCMScheduler

        s = LCMScheduler(**kw, original_inference_steps=LCM_GRID, clip_sample=False, set_alpha_to_one=True)
        s.set_timesteps(steps)
    else:
        raise ValueError(f"unknown scheduler '{name}': expected one of {', '.join(SCHEDULERS)}")
    return s


def initial_noise(shape: tuple[int, ...], seeds: list[int], device: str | torch.device = "cpu") -> torch.Tensor:
    """x_T for a batch (diffusion/noise.py): item i from its own seed, independent of the batch."""
    return torch.from_numpy(seeded_normal(shape, seeds)).to(device)


def generators(seeds: list[int], device: str | torch.device = "cpu") -> list[torch.Generator]:
    """Per-item generators for stochastic solvers (DDPM), offset so they differ from the x_T draw."""
    return [torch.Generator(device).manual_seed(s + 1_000_003) for s in seeds]


def sample(denoise: DenoiseFn, scheduler: SchedulerMixin, noise: torch.Tensor,
           generator: list[torch.Generator] | torch.Generator | None = None,
           callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Integrate from x_T = noise to x_0 with `scheduler`; returns the clean latents (float32)."""
    x = noise.float() * scheduler.init_noise_sigma
    timesteps = scheduler.timesteps
    x0 = None
    for i, t in enumerate(timesteps):
        out = denoise(scheduler.scale_model_input(x, t), t, i).float()
        step = scheduler.step(out, t, x, generator=generator)
        x = step.prev_sample
        x0 = getattr(step, "pred_original_sample", None)
        if callback is not None:
            callback(i + 1, len(timesteps))
    # DDIM/DDPM: the last predicted x0 (clean by construction). DPM (no x0 in its output): final sigma is 0.
    return x0 if x0 is not None else x


def solver_matrix(scheduler: SchedulerMixin) -> torch.Tensor:
    """A deterministic solver as numbers, for the ONNX runtime (sampling/onnx_pipeline.py): (K + 1, K + 1)
    float64 where row i < K gives x_i, the latents the network sees at step i, and row K the result
    `sample` returns, each as a combination of [x_T, out_0, ..., out_{K-1}] (out_j: the network's output
    at step j). DPM-Solver and DDIM (eta 0) update the latents linearly with per-step scalars, so running
    the scheduler itself on basis vectors reads its exact arithmetic off instead of re-implementing it.
    ValueError for a solver that is not linear (DDPM, LCM: they draw noise)."""
    k = len(scheduler.timesteps)
    basis = torch.eye(k + 1, dtype=torch.float64)  # (K + 1, K + 1): x_T, out_0, ..., out_{K-1}
    seen: list[torch.Tensor] = []
    outs = iter(basis[1:])

    def record(x: torch.Tensor, t: torch.Tensor, i: int) -> torch.Tensor:
        seen.append(x.double())
        return next(outs)

    # Schedulers are stateful: probe copies.
    try:
        result = sample(record, copy.deepcopy(scheduler), basis[0], generator=torch.Generator().manual_seed(0))
    except (IndexError, RuntimeError, TypeError) as e:  # e.g. DDPM's per-item generators on a vector
        raise ValueError(f"{type(scheduler).__name__} cannot be probed as a linear solver ({e})") from None
    rows = torch.stack([*seen, result.double()])
    # Check on random numbers: the rows must reproduce a real run (a noisy solver does not).
    gen = torch.Generator().manual_seed(1)
    x_t, preds = torch.randn(3, generator=gen, dtype=torch.float64), torch.randn(k, 3, generator=gen,
                                                                             dtype=torch.float64)
    real = sample(lambda x, t, i: preds[i], copy.deepcopy(scheduler), x_t, generator=torch.Generator().manual_seed(2))
    if not torch.allclose(rows[-1] @ torch.cat([x_t[None], preds]), real.double(), rtol=1e-4, atol=1e-4):
        raise ValueError(f"{type(scheduler).__name__} is not a linear deterministic solver")
    return rows
