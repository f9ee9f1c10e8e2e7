"""Anchoring the conditioning frame: the rewritten prediction implies the known clean frame, and
every solver then ends exactly on it while the other frames stay free."""

from __future__ import annotations

import pytest
import torch

from animated_stickers.config import model_config
from animated_stickers.diffusion.anchor import anchor_frame, output_for_x0
from animated_stickers.diffusion.sampler import initial_noise, make_scheduler, sample
from animated_stickers.diffusion.schedules import train_scheduler


@pytest.mark.parametrize("kind", ["v_prediction", "epsilon"])
def test_output_for_x0_is_the_training_target(kind):
    sch = train_scheduler(model_config("tiny", overrides=[f"prediction_type={kind}"]))
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(5, 8, 4, 4, generator=g), torch.randn(5, 8, 4, 4, generator=g)
    t = torch.tensor([0, 250, 500, 900, 999 if kind == "v_prediction" else 990])  # 999: zero SNR
    x_t = sch.add_noise(x0, eps, t)
    want = sch.get_velocity(x0, eps, t) if kind == "v_prediction" else eps
    got = output_for_x0(x_t, x0, sch.alphas_cumprod[t].reshape(-1, 1, 1, 1), kind)
    torch.testing.assert_close(got, want, atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("scheduler", ["dpm", "ddim"])
def test_solvers_land_the_anchored_frame_on_the_clean_latent(scheduler):
    cfg = model_config("tiny")
    s = make_scheduler(cfg, scheduler, 15)
    clean = torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(8, 8, generator=torch.Generator().manual_seed(2)) * 0.3

    def net(x, t, i):  # any denoiser: a fixed channel mix of x, so frames also interact with nothing
        return torch.einsum("dc,bcthw->bdthw", weight, x)

    def anchored(x, t, i):
        return anchor_frame(net(x, t, i), x, t, clean, 3, s.alphas_cumprod, s.config.prediction_type)

    out = sample(anchored, s, initial_noise((2, 8, 8, 4, 4), [0, 1]))
    torch.testing.assert_close(out[:, :, 3], clean, atol=1e-4, rtol=0)
    free = sample(net, make_scheduler(cfg, scheduler, 15), initial_noise((2, 8, 8, 4, 4), [0, 1]))
    assert (free[:, :, 3] - clean).abs().max() > 0.5  # without the anchor the frame is elsewhere
    torch.testing.assert_close(out[:, :, 0], free[:, :, 0])  # a frame-wise net: other frames untouched
