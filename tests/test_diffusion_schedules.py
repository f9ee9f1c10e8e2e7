"""The inference time grid: uniform in logSNR, monotone, no steps wasted at the zero-SNR end, and a
lower ODE error than diffusers' clamped `use_lu_lambdas` grid on an analytic denoiser."""

from __future__ import annotations

import itertools

import pytest
import torch

from animated_stickers.config import model_config
from animated_stickers.diffusion.sampler import make_scheduler
from animated_stickers.diffusion.schedules import logsnr, logsnr_timesteps, scheduler_kwargs, train_scheduler
from sampling_support import one_thread  # noqa: F401 (autouse fixture)


def cfg(prediction: str = "v_prediction"):
    return model_config("tiny", overrides=[f"prediction_type={prediction}"])


@pytest.mark.parametrize("steps", [8, 15, 50])
def test_logsnr_grid_is_monotone_and_uniform_after_the_pure_noise_step(steps):
    ac = train_scheduler(cfg()).alphas_cumprod
    ts = logsnr_timesteps(ac, steps)
    lam = logsnr(ac)[ts]
    assert len(ts) == steps and ts[0] == 999 and ts[-1] == 0
    assert all(a > b for a, b in itertools.pairwise(ts))  # strictly decreasing t
    assert torch.all(lam[1:] > lam[:-1])  # strictly increasing logSNR
    assert lam[0] == float("-inf")  # zero terminal SNR: the first step is pure noise
    gaps = lam[2:] - lam[1:-1]
    if steps <= 15:  # more steps than integer timesteps near t = 0 allow cannot be uniform there
        assert (gaps - gaps.mean()).abs().max() < 0.25 * gaps.mean()


def test_zero_snr_grid_spends_one_step_at_pure_noise_where_the_lu_grid_spends_a_third():
    ours = make_scheduler(cfg(), "dpm", 15).timesteps
    lu = make_scheduler(cfg(), "dpm-lu", 15).timesteps
    assert int((ours >= 983).sum()) == 1
    assert int((lu >= 983).sum()) >= 4  # the pitfall measured in FACTS.md
    # The second step leaves the near-pure-noise region (logSNR >= -2.5 means alpha >= 0.08).
    assert logsnr(train_scheduler(cfg()).alphas_cumprod)[int(ours[1])] >= -2.6


def test_epsilon_schedule_without_zero_snr_starts_at_its_last_timestep():
    ac = train_scheduler(cfg("epsilon")).alphas_cumprod
    assert logsnr(ac)[999] > -3  # ordinary scaled-linear schedule: finite SNR at t = 999
    ts = logsnr_timesteps(ac, 15)
    assert ts[0] == 999 and ts[-1] == 0 and len(set(ts)) == 15


def test_too_many_steps_is_an_error():
    with pytest.raises(ValueError):
        logsnr_timesteps(train_scheduler(cfg()).alphas_cumprod, 1001)


# --------------------------------------------------------------------------- analytic denoiser
MU = torch.tensor([-1.0, 0.3, 1.2], dtype=torch.float64)
STD = torch.tensor([0.05, 0.2, 0.1], dtype=torch.float64)
W = torch.tensor([0.3, 0.4, 0.3], dtype=torch.float64)


def gmm_v_model(ac_train: torch.Tensor):
    """The exact v-prediction of a 1-D Gaussian mixture (posterior mean in closed form)."""

    def model(x: torch.Tensor, t: int) -> torch.Tensor:
        a, s = ac_train[t].sqrt(), (1 - ac_train[t]).sqrt()
        var = a**2 * STD**2 + s**2
        logp = torch.log(W) - 0.5 * torch.log(var) - 0.5 * (x[..., None] - a * MU) ** 2 / var
        x0 = (torch.softmax(logp, -1) * (MU + a * STD**2 * (x[..., None] - a * MU) / var)).sum(-1)
        return a * (x - a * x0) / s - s * x0  # v = alpha * eps - sigma * x0

    return model


def solve(scheduler, model, noise: torch.Tensor) -> torch.Tensor:
    x = noise.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, int(t)), t, x).prev_sample
    return x


def test_logsnr_grid_has_lower_ode_error_than_the_clamped_lu_grid():
    from diffusers import DPMSolverMultistepScheduler

    c = cfg()
    ac = train_scheduler(c).alphas_cumprod.double()
    model = gmm_v_model(ac)
    noise = torch.randn(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    reference = DPMSolverMultistepScheduler(**scheduler_kwargs(c), algorithm_type="dpmsolver++", solver_order=2,
                                            final_sigmas_type="zero")
    reference.set_timesteps(timesteps=list(range(999, 0, -4)) + [0])  # 251 steps: converged to ~1e-3
    x_ref = solve(reference, model, noise)

    def err(name: str) -> float:
        return (solve(make_scheduler(c, name, 15), model, noise) - x_ref).pow(2).mean().sqrt().item()

    ours, lu = err("dpm"), err("dpm-lu")
    assert ours < 0.8 * lu, (ours, lu)
    assert ours < 0.08
