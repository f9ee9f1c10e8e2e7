"""Fresh procedural motions for the motion model (issue 28): a procedural clip's still given a motion drawn
anew, with its exact volume and a caption naming it (data/motion_loader.py draw_fresh_motion / fresh_volume)."""

from __future__ import annotations

import random

import numpy as np
import torch

from animated_stickers.data.motion_loader import draw_fresh_motion, fresh_volume, plan_motion_example
from animated_stickers.motion.procedural import MOTIONS, NUM_FRAMES, animate_canvas, draw_components
from animated_stickers.motion.words import describe_motion, dominant_motion, prompt_request
from animated_stickers.rgba import to_uint8
from animated_stickers.sampling.motion_model import render_motion


def _sticker(size: int = 64) -> np.ndarray:
    """A face-like disc at 0.6 of the canvas, an eye off centre (so a spin shows)."""
    yy, xx = np.mgrid[:size, :size]
    img = np.zeros((size, size, 4), np.uint8)
    img[(xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (0.3 * size) ** 2] = (250, 200, 30, 255)
    img[(xx - 0.4 * size) ** 2 + (yy - 0.4 * size) ** 2 < (0.06 * size) ** 2] = (20, 20, 20, 255)
    return img


def _meta(procedural: str | None) -> dict:
    return {"key": "k", "label": "yellow face", "procedural_motion": procedural, "procedural_seed": 3,
            "procedural_frames": 24, "fps": 24.0, "spectral": {"phases": [0], "still_steps": [0]}}


def test_fresh_motions_are_every_procedural_motion_with_seeds():
    rng = random.Random(0)
    drawn = [draw_fresh_motion(rng) for _ in range(600)]
    names = {n for n, _ in drawn}
    assert names == set(MOTIONS)  # singles and combinations alike
    singles = np.mean(["+" not in n for n, _ in drawn])
    assert 0.6 < singles < 0.8  # FRESH_SINGLE_SHARE
    assert len({s for _, s in drawn}) > 590  # a new amplitude / speed / direction almost every time


def test_a_fresh_plan_names_its_motion_and_only_procedural_clips_get_one():
    for i in range(20):
        plan = plan_motion_example(_meta("nod"), random.Random(i), p_drop_text=0, p_drop_image=0, p_drop_both=0,
                                   p_fresh=1.0)
        name, _ = plan.fresh
        # the caption words the fresh motion (read back by the opt-in word parser, never at run time)
        assert MOTIONS[name].words[0] in prompt_request(plan.caption).words, (name, plan.caption)
        assert "nodding" not in prompt_request(plan.caption).words or "nod" in name  # not the stored motion
    artist = plan_motion_example(_meta(None), random.Random(0), p_fresh=1.0)
    assert artist.fresh is None  # an artist's motion belongs to its emoji: never replaced
    # p_fresh 0 draws nothing more: the plan of a seed is what it was before fresh motions existed
    assert plan_motion_example(_meta("nod"), random.Random(5)) == plan_motion_example(_meta("nod"), random.Random(5),
                                                                                       p_fresh=0.0)


def test_a_fresh_volume_moves_the_sticker_as_its_motion():
    still = _sticker()
    for name, word in [("bounce", "bouncing"), ("slide", "sliding"), ("spin", "spinning"), ("pulse", "pulsing")]:
        volume = fresh_volume(still, (name, 11))
        assert volume.shape == (16, 64, 64) and volume.dtype == np.float32
        clip = to_uint8(render_motion(still, volume, 48, 0))
        assert dominant_motion(describe_motion(clip, 24.0, 0)) == word
        # the generator's own frames of this canvas at a few loop positions: the rendered field agrees
        drawn = animate_canvas(still, draw_components(name, 11), NUM_FRAMES)
        checked = 0
        for t in (5, 9, 17, 29, 40):  # RGBA: a spinning disc's alpha stays put, its eye does not
            moved = np.abs(drawn[t].astype(float) - drawn[0]).mean()
            if moved > 1:  # frames away from the rest pose (a 2-cycle pulse is back at rest mid-loop)
                checked += 1
                err = np.abs(clip[t].astype(float) - drawn[t]).mean()
                assert err < 0.6 * moved, (name, t)  # 4 harmonics of the exact flow: a bounce's landing is rounded
        assert checked >= 2, name


def test_the_bank_gives_procedural_stills_fresh_motions():
    from animated_stickers.training.motion_task import MotionBank
    from animated_stickers.training.recipes import Stage

    still = torch.from_numpy(_sticker(128))[None]  # (1, S, S, 4)
    stored = torch.zeros((1, 16, 64, 64), dtype=torch.float16)  # a stored target of no motion
    bank = MotionBank(still, stored, [{**_meta("nod"), "start": 0, "count": 1, "source": "procedural"}])
    stage = Stage(name="motion", kind="motion", steps=1, canonical_phase=True, p_fresh_motion=1.0)
    views = [bank.example(0, random.Random(i), stage) for i in range(6)]
    assert all(plan.fresh is not None for _, _, plan in views)
    sizes = [float(vol.abs().mean()) for _, vol, _ in views]
    assert min(sizes) > 0  # the fresh motion, not the stored stillness (exactly zero)
    assert len({round(s, 6) for s in sizes}) == len(sizes)  # a different motion each time
    stage.p_fresh_motion = 0.0
    _, vol, plan = bank.example(0, random.Random(0), stage)
    assert plan.fresh is None and float(vol.abs().max()) == 0.0


def test_a_procedural_target_keeps_its_rest_phase_so_a_spin_stays_a_spin():
    """phase_is_canonical: artist clips are turned to the canonical phase, procedural ones are not. Turning a
    large rotation's phase gives D(phi + psi) - D(psi), no rotation at all."""
    from animated_stickers.data.motion_loader import phase_is_canonical
    from animated_stickers.motion.spectral import canonical_phase

    assert phase_is_canonical({"procedural_motion": None}, True) and not phase_is_canonical({}, False)
    assert not phase_is_canonical({"procedural_motion": "spin"}, True)
    still = _sticker()
    volume = fresh_volume(still, ("spin", 4))
    kept = dominant_motion(describe_motion(to_uint8(render_motion(still, volume, 48, 0)), 24.0, 0))
    turned = dominant_motion(describe_motion(to_uint8(render_motion(still, canonical_phase(volume), 48, 0)), 24.0, 0))
    assert kept == "spinning" and turned != "spinning"


SLIDE_SEED = 25  # draws a slide of 0.36 sticker sizes (the widest of seeds 0-29)


def test_a_slides_support_covers_where_the_sticker_goes():
    """motion_support: the target and the sample are cut where the sticker shows over the loop, not at its
    resting outline, so a slide is not clipped into a wobble."""
    from animated_stickers.models.motion_net import SUPPORT_DILATE
    from animated_stickers.motion.spectral import alpha_on_grid, motion_support

    still = np.zeros((128, 128, 4), np.uint8)
    still[40:88, 40:88] = (200, 50, 50, 255)  # a square 3/8 of the canvas wide: it slides 17 px of 128
    volume = fresh_volume(still, ("slide", SLIDE_SEED))
    alpha = alpha_on_grid(still[..., 3].astype(np.float32) / 255, 64)
    support = motion_support(alpha, volume, SUPPORT_DILATE)
    resting = motion_support(alpha, np.zeros_like(volume), SUPPORT_DILATE)  # the still's own, dilated
    assert (support >= resting).all() and (support > 0).sum() > 1.15 * (resting > 0).sum()
    cut = to_uint8(render_motion(still, volume * support, 48, 0))
    clipped = to_uint8(render_motion(still, volume * resting, 48, 0))
    assert dominant_motion(describe_motion(cut, 24.0, 0)) == "sliding"
    # cut at its support the square keeps its size as it slides; cut at its resting outline it is clipped
    area = [(f[..., 3] > 128).sum() for f in cut]
    assert min(area) >= 0.99 * area[0] and min((f[..., 3] > 128).sum() for f in clipped) < 0.96 * area[0]
