"""The sampling loop over diffusers schedulers: exact x0 from a perfect model, eps and v, seeds."""

from __future__ import annotations

import pytest
import torch

from animated_stickers.config import model_config
from animated_stickers.diffusion.sampler import generators, initial_noise, make_scheduler, sample
from animated_stickers.diffusion.schedules import train_scheduler
from sampling_support import one_thread  # noqa: F401 (autouse fixture)


def perfect_model(cfg, x0: torch.Tensor):
    """The exact denoiser when the data is the single point x0, in the model's parameterisation."""
    ac = train_scheduler(cfg).alphas_cumprod.double()

    def denoise(x: torch.Tensor, t: torch.Tensor, i: int) -> torch.Tensor:
        a, s = ac[int(t)].sqrt(), (1 - ac[int(t)]).sqrt()
        eps = (x.double() - a * x0) / s
        return (eps if cfg.prediction_type == "epsilon" else a * eps - s * x0).float()

    return denoise


@pytest.mark.parametrize("prediction", ["v_prediction", "epsilon"])
@pytest.mark.parametrize(("name", "steps"), [("dpm", 15), ("dpm", 8), ("dpm-lu", 15), ("ddim", 50), ("ddim", 10),
                                             ("ddpm", 30)])
def test_solvers_recover_x0_from_a_perfect_model(prediction, name, steps):
    cfg = model_config("tiny", overrides=[f"prediction_type={prediction}"])
    x0 = torch.randn(2, 8, 3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.5
    noise = initial_noise((2, 8, 3, 4, 4), [0, 1])
    out = sample(perfect_model(cfg, x0), make_scheduler(cfg, name, steps), noise, generator=generators([0, 1]))
    assert out.shape == x0.shape
    assert (out.double() - x0).abs().max() < 2e-3, (out.double() - x0).abs().max()


def test_unknown_scheduler_is_an_error():
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_scheduler(model_config("tiny"), "euler", 10)


def test_seeds_reproduce_and_do_not_depend_on_the_batch():
    a = initial_noise((2, 8, 8, 4, 4), [7, 8])
    b = initial_noise((2, 8, 8, 4, 4), [7, 8])
    alone = initial_noise((1, 8, 8, 4, 4), [8])
    assert torch.equal(a, b)
    assert torch.equal(a[1:], alone)  # sticker 2's noise is the same whether batched or alone
    assert not torch.equal(a[0], a[1])


def test_ddpm_is_stochastic_but_reproducible_with_its_generators():
    cfg = model_config("tiny")
    x0 = torch.zeros(1, 8, 2, 4, 4, dtype=torch.float64)

    def run(seed: int) -> torch.Tensor:
        noise = initial_noise((1, 8, 2, 4, 4), [0])
        # An imperfect model (shrunk prediction) so the injected noise survives to the output.
        base = perfect_model(cfg, x0)
        return sample(lambda x, t, i: 0.9 * base(x, t, i), make_scheduler(cfg, "ddpm", 10), noise,
                      generator=generators([seed]))

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


@pytest.mark.parametrize(("name", "steps"), [("dpm", 15), ("dpm", 4), ("dpm-lu", 6), ("ddim", 4)])
def test_the_solver_matrix_replays_the_scheduler(name, steps):
    """The ONNX engine's solver (rows over [x_T, out_0, ...]) lands where diffusers does, with a model
    whose output depends on x_t and t (so the rows must also give the right x_i to evaluate it at)."""
    from animated_stickers.diffusion.sampler import solver_matrix

    cfg = model_config("tiny")
    rows = solver_matrix(make_scheduler(cfg, name, steps))
    assert rows.shape == (steps + 1, steps + 1)
    assert torch.equal(rows[0], torch.eye(steps + 1, dtype=torch.float64)[0])  # x_0 seen = x_T
    x_t = initial_noise((1, 8, 2, 4, 4), [3])
    model = perfect_model(cfg, torch.tanh(torch.linspace(-2, 2, 256)).reshape(1, 8, 2, 4, 4))
    want = sample(model, make_scheduler(cfg, name, steps), x_t)
    basis = [x_t.double()]
    for i, t in enumerate(make_scheduler(cfg, name, steps).timesteps):
        x = sum(c * b for c, b in zip(rows[i], basis))
        basis.append(model(x.float(), t, i).double())
    got = sum(c * b for c, b in zip(rows[-1], basis))
    assert torch.allclose(got.float(), want, atol=1e-4), (got.float() - want).abs().max()


def test_a_solver_that_draws_noise_has_no_matrix():
    from animated_stickers.diffusion.sampler import solver_matrix

    with pytest.raises(ValueError, match="linear"):
        solver_matrix(make_scheduler(model_config("tiny"), "ddpm", 4))
