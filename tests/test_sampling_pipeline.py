"""AnimatePipeline end to end on a tiny random model: sizes, conditioning frame, batching, seeds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from animated_stickers.config import SamplingConfig
from animated_stickers.errors import UserError
from animated_stickers.sampling.pipeline import AnimatePipeline, TextToImagePipeline, to_tensor
from animated_stickers.sampling.preprocess import prepare_sticker
from sampling_support import one_thread, sticker, tiny_model  # noqa: F401 (one_thread: autouse fixture)

FAST = SamplingConfig(steps=3, guided_steps=2, seed=5)


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return AnimatePipeline(tiny_model())


def arrays(frames):
    return [np.asarray(f) for f in frames]


def test_animate_batch_returns_8_frames_at_each_input_size_with_the_input_at_the_cond_frame(pipe):
    a, b = sticker(96, 64, seed=1), sticker(40, 70, seed=2)
    out = pipe.animate([a, b], ["waving", "jumping"], dataclasses.replace(FAST, paste_input=True))
    assert [len(v) for v in out] == [8, 8]
    assert {f.size for f in out[0]} == {(96, 64)} and {f.size for f in out[1]} == {(40, 70)}
    assert all(f.mode == "RGBA" for v in out for f in v)
    cond = pipe.model.cfg.cond_frame
    assert np.array_equal(np.asarray(out[0][cond]), np.asarray(a))  # the user's sticker, exactly
    assert np.array_equal(np.asarray(out[1][cond]), np.asarray(b))
    others = arrays(out[0][:cond] + out[0][cond + 1:])
    assert not all(np.array_equal(others[0], o) for o in others[1:])  # frames differ (temporal layers)
    stats = pipe.stats
    assert (stats["nfe"], stats["forwards"], stats["steps"]) == (7, 3, 3)  # 2 guided (3 each) + 1 conditional
    assert 0 < stats["unet_s"] <= stats["sampling_s"] and stats["vae_decode_s"] > 0


def test_same_seed_same_output_and_another_seed_differs(pipe):
    img = sticker(seed=3)
    first = arrays(pipe.animate([img], ["waving"], FAST)[0])
    again = arrays(pipe.animate([img], ["waving"], FAST)[0])
    other = arrays(pipe.animate([img], ["waving"], dataclasses.replace(FAST, seed=6))[0])
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))


def test_a_sticker_comes_out_the_same_alone_or_first_in_a_batch(pipe):
    a, b = (prepare_sticker(sticker(seed=s), "x", 64).canvas for s in (4, 9))
    alone = pipe.make_video(to_tensor([a]), ["waving"], FAST)
    batched = pipe.make_video(to_tensor([a, b]), ["waving", "spinning"], FAST)
    # Same noise (per-sticker seeds) and conditions; only float summation order may differ.
    np.testing.assert_allclose(alone[0], batched[0], atol=2e-3, rtol=0)  # (T, H, W, 4) numpy
    assert np.abs(batched[0] - batched[1]).max() > 0.05



def test_prompt_changes_the_result(pipe):
    img = sticker(seed=3)
    a = arrays(pipe.animate([img], ["waving"], FAST)[0])
    b = arrays(pipe.animate([img], ["jumping up and down"], FAST)[0])
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("scheduler", ["ddim", "ddpm", "dpm-lu"])
def test_reference_schedulers_run_through_the_pipeline(pipe, scheduler):
    out = pipe.animate([sticker()], ["waving"], dataclasses.replace(FAST, scheduler=scheduler))
    assert len(out[0]) == 8


def test_bad_requests_are_user_errors(pipe):
    with pytest.raises(UserError, match="2 prompts for 1 images"):
        pipe.animate([sticker()], ["a", "b"], FAST)
    with pytest.raises(UserError, match="prompt is empty"):
        pipe.animate([sticker()], [" "], FAST)
    with pytest.raises(UserError, match="scheduler 'euler'"):
        pipe.animate([sticker()], ["a"], dataclasses.replace(FAST, scheduler="euler"))


def test_text_to_image_stage_makes_canvas_sized_stills():
    t2i = TextToImagePipeline(tiny_model(video=False))
    stills = t2i.stills(["a cat", "a dog"], FAST)
    assert [s.size for s in stills] == [(64, 64)] * 2 and stills[0].mode == "RGBA"
    with pytest.raises(UserError, match="needs a video model"):
        AnimatePipeline(tiny_model(video=False))


@pytest.mark.parametrize("target", ["frames", "residual"])
def test_anchored_cond_frame_is_the_sticker_latent_for_both_video_targets(target):
    pipe = AnimatePipeline(tiny_model(overrides=[f"video_target={target}"]))
    canvas = to_tensor([prepare_sticker(sticker(seed=4), "x", 64).canvas])
    cond = pipe.conditions(["waving"], pipe.model.vae.encode(canvas))
    cf = pipe.model.cfg.cond_frame
    anchored = pipe.sample_latents(cond, FAST)
    torch.testing.assert_close(anchored[:, :, cf], cond.image_latent, atol=1e-4, rtol=0)
    free = pipe.sample_latents(cond, dataclasses.replace(FAST, anchor=False))
    assert (free[:, :, cf] - cond.image_latent).abs().max() > 0.1
    others = [f for f in range(8) if f != cf]
    assert (anchored[:, :, others] - free[:, :, others]).abs().max() > 1e-3  # neighbours see the anchor


def test_the_cond_frame_is_decoded_unless_paste_input(pipe):
    img = sticker(seed=3)
    pasted = pipe.animate([img], ["waving"], dataclasses.replace(FAST, paste_input=True))[0]
    decoded = pipe.animate([img], ["waving"], dataclasses.replace(FAST, room=False))[0]  # paste_input: no room
    cf = pipe.model.cfg.cond_frame
    assert np.array_equal(np.asarray(pasted[cf]), np.asarray(img))
    assert not np.array_equal(np.asarray(decoded[cf]), np.asarray(img)) and decoded[cf].size == img.size
    assert all(np.array_equal(np.asarray(a), np.asarray(b))  # only the cond frame changes
               for i, (a, b) in enumerate(zip(pasted, decoded)) if i != cf)
