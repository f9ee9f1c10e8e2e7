"""Seamless loops by construction: circular temporal layers, roll equivariance, any conditioning index,
whole-loop clips from the data, and 16-frame loops from the same model."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from animated_stickers.config import SamplingConfig, model_config
from animated_stickers.data.clips import loop_period, plan_loop_clip
from animated_stickers.diffusion.guidance import IP2PConditions
from animated_stickers.models.checkpoint import StickerModel
from animated_stickers.models.unet import StickerUNet, make_cond_mask

sys.path.insert(0, str(Path(__file__).parent))
from training_fixtures import disc_frames  # noqa: E402

SMALL = ["resolution=32", "vae.block_out_channels=[8,16]", "vae.norm_num_groups=4",
         "unet.block_out_channels=[16,32]", "unet.attention_blocks=[true,true]", "unet.head_dim=8",
         "unet.norm_num_groups=4", "unet.cross_attention_dim=16"]


def _trained_like(cfg) -> StickerUNet:
    """An inflated UNet with every weight (temporal layers and the mask channel too) made non-trivial."""
    torch.manual_seed(0)
    unet = StickerUNet(cfg).inflate().eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return unet


def test_rolling_noise_and_conditioning_index_together_rolls_the_output_exactly():
    cfg = model_config("tiny", overrides=SMALL)
    unet = _trained_like(cfg)
    b, t, h = 2, 8, cfg.latent_size
    x, image = torch.randn(b, 8, t, h, h), torch.randn(b, 8, h, h)
    text = [torch.randn(b, 6, 384)]
    with torch.no_grad():
        out = unet(x, torch.tensor([10, 500]), text, image, make_cond_mask(b, t, 3))
        for k in (1, 3, 5):
            rolled = unet(x.roll(k, dims=2), torch.tensor([10, 500]), text, image, make_cond_mask(b, t, (3 + k) % t))
            assert (rolled - out.roll(k, dims=2)).abs().max().item() < 1e-4, k


def test_last_frame_neighbours_the_first_as_any_two_frames_do():
    """With circular padding, a change to frame 0 reaches frame T-1 exactly as a change to frame 4 reaches 3."""
    cfg = model_config("tiny", overrides=SMALL + ["unet.temporal_attention=false"])
    unet = _trained_like(cfg)
    x = torch.randn(1, 8, 8, cfg.latent_size, cfg.latent_size)
    text, image, mask = [torch.randn(1, 6, 384)], torch.zeros(1, 8, cfg.latent_size, cfg.latent_size), torch.zeros(1, 8)
    with torch.no_grad():
        def effect(clip: torch.Tensor, edit: int, seen: int) -> torch.Tensor:
            changed = clip.clone()
            changed[:, :, edit] += 1.0
            return (unet(changed, torch.tensor([10]), text, image, mask)
                    - unet(clip, torch.tensor([10]), text, image, mask))[:, :, seen]

        e0 = effect(x, 0, 7)  # across the seam
        e4 = effect(x.roll(4, dims=2), 4, 3)  # the same two frames, rolled to the middle of the clip
    assert e0.abs().max() > 1e-4  # frame 7 sees frame 0
    assert torch.allclose(e0, e4, atol=1e-4)
    # With zero padding the seam is an edge: the same two frames interact differently there.
    zeros = model_config("tiny", overrides=SMALL + ["unet.temporal_attention=false", "unet.temporal_padding=zeros"])
    unet = _trained_like(zeros)
    with torch.no_grad():
        assert not torch.allclose(effect(x, 0, 7), effect(x.roll(4, dims=2), 4, 3), atol=1e-3)


def test_the_mask_channel_moves_the_conditioning_frame():
    cfg = model_config("tiny", overrides=SMALL)
    unet = _trained_like(cfg)
    x, image = torch.randn(1, 8, 8, cfg.latent_size, cfg.latent_size), torch.randn(1, 8, cfg.latent_size,
                                                                                  cfg.latent_size)
    text = [torch.randn(1, 6, 384)]
    with torch.no_grad():
        a = unet(x, torch.tensor([10]), text, image, make_cond_mask(1, 8, 3))
        b = unet(x, torch.tensor([10]), text, image, make_cond_mask(1, 8, 6))
        default = unet(x, torch.tensor([10]), text, image)
    assert (a - b).abs().max() > 1e-3
    assert torch.equal(default, a)  # no mask given: the model's own conditioning frame (3 of 8)


@pytest.mark.parametrize("frames,cond", [(8, 5), (16, 7), (16, 0)])
def test_sampling_anchors_any_index_at_8_and_16_frames(frames, cond):
    from animated_stickers.sampling.pipeline import AnimatePipeline

    cfg = model_config("tiny", overrides=SMALL + ["video_target=residual"])
    model = StickerModel.create(cfg)
    model.unet = _trained_like(cfg)
    pipe = AnimatePipeline(model)
    h = cfg.latent_size
    image = torch.randn(1, 8, h, h)
    ctx = torch.randn(1, 4, 16)
    cond_ = IP2PConditions(context=ctx, null_context=torch.zeros_like(ctx), image_latent=image)
    params = SamplingConfig(steps=4, image_guidance=1.0, text_guidance=1.0, num_frames=frames, cond_frame=cond)
    z = pipe.sample_latents(cond_, params)
    assert z.shape == (1, 8, frames, h, h)
    assert (z[:, :, cond] - image).abs().max().item() < 1e-3  # the sticker sits at the asked index
    assert (z[:, :, (cond + 1) % frames] - image).abs().max().item() > 1e-2


def test_clip_layout_rejects_an_index_outside_the_loop():
    from animated_stickers.errors import UserError
    from animated_stickers.sampling.pipeline import check_params

    with pytest.raises(UserError, match="cond_frame=16: expected 0 to 15"):
        check_params(SamplingConfig(num_frames=16, cond_frame=16))
    with pytest.raises(UserError, match="frames=1: expected 2 to"):
        check_params(SamplingConfig(num_frames=1))
    with pytest.raises(UserError, match="render 'paint': expected one of warp, fuse"):
        check_params(SamplingConfig(render="paint"))
    with pytest.raises(UserError, match="harmonics=0: expected 1 to 16"):
        check_params(SamplingConfig(harmonics=0))


def _arr(frames) -> np.ndarray:
    return np.stack([np.asarray(f) for f in frames])


def test_loop_period_finds_whole_and_repeated_loops_and_rejects_a_drift():
    loop = _arr(disc_frames(24, 48, 0.0, (200, 40, 90)))
    assert loop_period(loop) == 24
    assert loop_period(np.concatenate([loop, loop])) == 24  # a loop played twice: one period
    drift = np.stack([np.roll(loop[0], i, axis=1) for i in range(24)])  # slides 23 px away, jumps back
    assert loop_period(drift) is None


def test_loop_clips_spread_evenly_over_one_period_from_a_random_phase():
    rng = random.Random(0)
    starts = set()
    for _ in range(50):
        plan = plan_loop_clip(72, 72, 24.0, rng, 8)
        steps = np.diff(list(plan.indices) + [plan.indices[0] + 72]) % 72
        assert set(steps.tolist()) == {9}  # 72 / 8, the seam included
        starts.add(plan.indices[0])
        assert plan.fps == pytest.approx(24.0 * 8 / 72)
    assert len(starts) > 20  # any roll of a loop is a loop
    assert len(plan_loop_clip(72, 72, 24.0, rng, 16).indices) == 16


# ---- the warp render: the sticker moved along its loop-smoothed motion (flow.loop_smooth, move_sticker)

def _flows(t: int, jitter: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(T, 8, 8, 2) flows: one sway cycle per loop (x), plus independent per-frame jitter; and the sway."""
    phase = 2 * np.pi * np.arange(t) / t
    sway = np.zeros((t, 8, 8, 2), np.float32)
    sway[..., 0] = 3.0 * np.sin(phase)[:, None, None]
    noise = np.random.default_rng(seed).normal(0, jitter, sway.shape).astype(np.float32)
    return sway + noise, sway


@pytest.mark.parametrize("frames,cond", [(8, 3), (16, 7)])
def test_loop_smooth_keeps_a_sway_drops_jitter_and_holds_the_sticker_frame(frames, cond):
    from animated_stickers.flow import loop_smooth

    _, sway = _flows(frames, 0.0)
    kept = loop_smooth(sway, cond, 2)
    assert np.allclose(kept, sway - sway[cond], atol=1e-5)  # one cycle per loop passes unchanged
    noisy, _ = _flows(frames, 0.3)
    smooth = loop_smooth(noisy, cond, 2)
    assert np.abs(smooth[cond]).max() == 0  # the conditioning frame stays the sticker exactly
    # Over the loop (frame T-1 is followed by frame 0): the jitter's frequencies above 2 cycles are gone.
    assert np.abs(np.fft.rfft(noisy, axis=0))[3:].max() > 1.0
    assert np.abs(np.fft.rfft(smooth, axis=0))[3:].max() < 1e-4
    assert np.abs(smooth - (sway - sway[cond])).mean() < 0.5  # what stays is the sway (3 px), not the jitter


def test_the_warp_render_moves_only_the_stickers_own_pixels():
    from animated_stickers.flow import move_sticker

    rng = np.random.default_rng(1)
    sticker = np.zeros((32, 32, 4), np.float32)
    sticker[8:24, 8:24, :3] = rng.random((16, 16, 3))  # a textured square on transparency
    sticker[8:24, 8:24, 3] = 1.0
    flows, _ = _flows(8, 0.5)
    frames = move_sticker(sticker, flows, 3, 2)  # (8, 32, 32, 4)
    assert frames.shape == (8, 32, 32, 4) and frames.min() >= 0 and frames.max() <= 1
    assert np.array_equal(frames[3], sticker)  # the conditioning frame is the sticker, untouched
    assert not np.allclose(frames[1], sticker)  # the others move
    # Far from the square there is nothing to move: the background stays exactly transparent.
    assert frames[:, :4, :, 3].max() == 0 and frames[:, :, :2, 3].max() == 0
