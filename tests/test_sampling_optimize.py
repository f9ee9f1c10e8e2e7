"""Speed-ups keep the numerics: TorchScript trace+freeze, channels-last, context once, bf16; fallback."""

from __future__ import annotations

import pytest
import torch

from animated_stickers.sampling.optimize import FastUNet, SpeedOptions
from sampling_support import one_thread, tiny_model  # noqa: F401 (one_thread: autouse fixture)


@pytest.fixture(scope="module")
def inputs():
    torch.set_num_threads(1)
    model = tiny_model()
    gen = torch.Generator().manual_seed(0)
    cfg, b = model.cfg, 3
    h = cfg.latent_size
    args = (torch.randn(b, 8, cfg.num_frames, h, h, generator=gen), torch.tensor([900, 500, 20]),
            torch.randn(b, 5, cfg.unet.cross_attention_dim, generator=gen), torch.randn(b, 8, h, h, generator=gen))
    with torch.no_grad():
        reference = FastUNet(model.unet, SpeedOptions(context_once=False))(*args)
    return model, args, reference


def test_torchscript_freeze_matches_eager(inputs):
    model, args, ref = inputs
    net = FastUNet(model.unet, SpeedOptions(jit=True))
    got = net(*args)
    assert len(net.status) == 1 and next(iter(net.status.values())).startswith("frozen trace")
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(net(*args), got)  # the cached trace is reused for the same shapes
    assert len(net.status) == 1


def test_failed_trace_falls_back_to_eager(inputs, monkeypatch):
    model, args, ref = inputs

    def broken(*a, **k):
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(torch.jit, "trace", broken)
    net = FastUNet(model.unet, SpeedOptions(jit=True))
    torch.testing.assert_close(net(*args), ref, atol=1e-5, rtol=1e-5)
    assert "eager fallback" in next(iter(net.status.values()))


@pytest.mark.parametrize("speed", [SpeedOptions(context_once=True), SpeedOptions(channels_last=True)])
def test_exact_speedups_do_not_change_the_prediction(inputs, speed):
    model, args, ref = inputs
    torch.testing.assert_close(FastUNet(model.unet, speed)(*args), ref, atol=1e-5, rtol=1e-5)


def test_bf16_stays_close_to_float32(inputs):
    model, args, ref = inputs
    got = FastUNet(model.unet, SpeedOptions(), dtype=torch.bfloat16)(*args)
    assert got.dtype == torch.float32
    rel = (got - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()
    assert 0 < rel < 0.05


def test_speedups_do_not_leak_into_other_users_of_the_same_model(inputs):
    model, args, _ = inputs
    fast = FastUNet(model.unet, SpeedOptions(channels_last=True, context_once=True))
    naive = FastUNet(model.unet, SpeedOptions(context_once=False))
    fast(*args)
    conv = model.unet.unet.conv_in.weight
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    naive(*args)
    assert model.unet.context_once is False  # each FastUNet sets the shared UNet's mode when it runs
    fast(*args)
    assert model.unet.context_once is False and fast.unet.context_once is True  # fast owns an NHWC copy
