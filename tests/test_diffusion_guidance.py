"""IP2P dual guidance (paper eq. 1-3) and adaptive guidance on a real (tiny, random) StickerUNet."""

from __future__ import annotations

import pytest
import torch

from animated_stickers.config import SamplingConfig
from animated_stickers.diffusion.guidance import DualGuidance, IP2PConditions, TextGuidance, ip2p_combine
from animated_stickers.diffusion.sampler import make_scheduler, sample
from sampling_support import one_thread, tiny_model  # noqa: F401 (one_thread: autouse fixture)


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    model = tiny_model()
    gen = torch.Generator().manual_seed(3)
    b, c, h = 2, 8, model.cfg.latent_size
    x = torch.randn(b, c, model.cfg.num_frames, h, h, generator=gen)
    d = model.cfg.unet.cross_attention_dim
    cond = IP2PConditions(context=torch.randn(b, 6, d, generator=gen),
                          null_context=torch.randn(1, 6, d, generator=gen).expand(b, -1, -1),
                          image_latent=torch.randn(b, c, h, h, generator=gen))
    return model, x, cond


def call(model):
    return lambda x, t, ctx, img: model.unet(x, t, ctx, img)


def test_scales_one_one_give_the_conditional_prediction():
    e00, ei0, eit = (torch.randn(2, 8, 3, 4, 4) for _ in range(3))
    torch.testing.assert_close(ip2p_combine(e00, ei0, eit, 1.0, 1.0), eit)
    torch.testing.assert_close(ip2p_combine(e00, ei0, eit, 0.0, 0.0), e00)  # both conditions ignored
    torch.testing.assert_close(ip2p_combine(e00, ei0, eit, 1.0, 0.0), ei0)  # image only


def test_guider_with_scales_one_one_equals_one_conditional_forward(setup):
    model, x, cond = setup
    t = torch.tensor(700)
    g = DualGuidance(1.0, 1.0)
    with torch.no_grad():
        got = g(call(model), x, t, cond, step=0)
        want = model.unet(x, t.expand(2), cond.context, cond.image_latent)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert g.nfe == 1 and g.forwards == 1  # no wasted branch evaluations


def test_batched_branches_equal_three_separate_forwards_and_eq_1_3(setup):
    model, x, cond = setup
    t = torch.tensor(500)
    with torch.no_grad():
        batched = DualGuidance(7.5, 2.0, batched=True)
        separate = DualGuidance(7.5, 2.0, batched=False)
        got_b = batched(call(model), x, t, cond, step=0)
        got_s = separate(call(model), x, t, cond, step=0)
        tt = t.expand(2)
        zero = torch.zeros_like(cond.image_latent)
        e00 = model.unet(x, tt, cond.null_context, zero)
        ei0 = model.unet(x, tt, cond.null_context, cond.image_latent)
        eit = model.unet(x, tt, cond.context, cond.image_latent)
    want = e00 + 7.5 * (ei0 - e00) + 2.0 * (eit - ei0)
    torch.testing.assert_close(got_b, got_s, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_b, want, atol=1e-4, rtol=1e-4)
    assert (ei0 - e00).abs().max() > 1e-3 and (eit - ei0).abs().max() > 1e-3  # both conditions matter
    assert (batched.nfe, batched.forwards) == (3, 1) and (separate.nfe, separate.forwards) == (3, 3)


class Recorder:
    """A stand-in denoiser (linear in its inputs) that records every call's batch and conditions."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def __call__(self, x, t, ctx, img):
        self.calls.append((x.shape[0], ctx.clone(), img.clone()))
        return 0.1 * x + ctx.mean((1, 2))[:, None, None, None, None] + img.mean((1, 2, 3))[:, None, None, None, None]


@pytest.mark.parametrize(("steps", "k", "batched", "nfe", "forwards"), [
    (15, 8, True, 31, 15), (15, 8, False, 31, 31), (50, 50, False, 150, 150), (15, 15, True, 45, 15),
    (15, 0, True, 15, 15), (8, 20, True, 24, 8)])
def test_adaptive_guidance_uses_exactly_the_expected_evaluations(setup, steps, k, batched, nfe, forwards):
    model, x, cond = setup
    rec = Recorder()
    g = DualGuidance(7.5, 2.0, guided_steps=k, batched=batched)
    sched = make_scheduler(model.cfg, "dpm", steps)
    sample(lambda xx, t, i: g(rec, xx, t, cond, i), sched, x)
    assert (g.nfe, g.forwards, len(rec.calls)) == (nfe, forwards, forwards)
    # After step k only the conditional branch runs: prompt context and the sticker latent, never nulls.
    n_unguided = steps - min(k, steps)
    for b, ctx, img in rec.calls[len(rec.calls) - n_unguided:]:
        assert b == x.shape[0]
        torch.testing.assert_close(ctx, cond.context)
        torch.testing.assert_close(img, cond.image_latent)


def test_adaptive_switch_happens_at_step_k(setup):
    model, x, cond = setup
    rec = Recorder()
    g = DualGuidance(7.5, 2.0, guided_steps=3, batched=True)
    sample(lambda xx, t, i: g(rec, xx, t, cond, i), make_scheduler(model.cfg, "ddim", 6), x)
    assert [c[0] for c in rec.calls] == [6, 6, 6, 2, 2, 2]


def test_text_guidance_for_the_still_stage():
    rec_calls = []

    def net(x, t, ctx, img):
        rec_calls.append(x.shape[0])
        assert img is None
        return x + ctx.mean((1, 2))[:, None, None, None, None]

    x = torch.randn(2, 8, 1, 4, 4)
    ctx, null = torch.ones(2, 3, 5), torch.zeros(2, 3, 5)
    g = TextGuidance(scale=4.0)
    out = g(net, x, torch.tensor(10), ctx, null, 0)
    torch.testing.assert_close(out, x + 4.0)  # uncond x + 0, cond x + 1 -> x + 4 * 1
    assert rec_calls == [4] and g.nfe == 2


def test_sampling_config_defaults_follow_the_paper():
    p = SamplingConfig()
    assert 7.5 <= p.image_guidance <= 9 and 1.5 <= p.text_guidance <= 3
    assert p.steps == 15 and p.guided_steps == 8 and p.scheduler == "dpm"
