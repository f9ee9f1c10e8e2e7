"""Cross-style pairs (data/cross_style.py) and the motion bank's views of one target (issue 28)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from animated_stickers.data.cross_style import align_to, check_styles, cross_style_stills, silhouette_iou
from animated_stickers.errors import UserError


def _disc(size: int, centre: tuple[float, float], radius: float, colour=(200, 40, 90)) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = np.where(np.hypot(yy - centre[1], xx - centre[0]) < radius, 255, 0)
    return rgba


def test_a_drawing_is_aligned_to_the_animations_alpha_box():
    ref = _disc(64, (40, 24), 12)  # the animation's still: a disc off centre
    drawing = _disc(200, (100, 100), 80, colour=(10, 200, 30))  # the flat style: big and centred
    aligned = align_to(drawing, ref)
    assert aligned.shape == ref.shape and aligned.dtype == np.uint8
    assert silhouette_iou(aligned, ref) > 0.85
    colour = aligned[aligned[..., 3] > 128][:, :3].mean(0)
    assert np.abs(colour - (10, 200, 30)).max() < 3  # the drawing's own pixels (resampled)
    assert align_to(np.zeros((8, 8, 4), np.uint8), ref) is None  # nothing visible


def test_a_drawing_of_another_shape_is_not_paired(tmp_path):
    ref = _disc(64, (32, 32), 20)
    bar = np.zeros((64, 64, 4), np.uint8)
    bar[28:36, :, :] = 255  # a thin horizontal bar: its alpha box aligned to the disc's is a different silhouette
    Image.fromarray(_disc(64, (32, 32), 28)).save(tmp_path / "disc.png")
    Image.fromarray(bar).save(tmp_path / "bar.png")
    index = {"1f600": [tmp_path / "disc.png", tmp_path / "bar.png"]}
    got = cross_style_stills("1f600", ref, index)
    assert len(got) == 1 and silhouette_iou(got[0], ref) > 0.85
    assert cross_style_stills("1f601", ref, index) == []


@pytest.mark.parametrize("style", ["fluent-high-contrast", "fluent-3d", "twemoji"])
def test_only_trained_drawn_styles_pair(style):
    with pytest.raises(UserError, match=f"cross style '{style}'"):
        check_styles([style])
    assert check_styles(["openmoji", "fluent-flat"]) == ("openmoji", "fluent-flat")


def test_the_bank_shows_one_target_through_every_view(tmp_path):
    """A bank of real prepared clips: every stored phase's still and the cross-style still are views of the
    clip's one consensus target; banks are cached per source and joined."""
    from animated_stickers.data.shards import PrepareOptions, prepare
    from animated_stickers.data.sources import fluent_items
    from animated_stickers.training.banks import read_samples
    from animated_stickers.training.motion_task import MotionBank
    from animated_stickers.training.recipes import Stage
    from training_fixtures import make_data_root

    root = make_data_root(tmp_path / "cache", n_anim=3, n_still=0)
    prepare(fluent_items(root, "animated"), tmp_path / "p",
            PrepareOptions(with_mv=False, bucket_score="frame_diff", progress=False, motion_targets=True,
                           motion_phases=3))
    samples = read_samples([tmp_path / "p"], "train", ("animated",))
    bank = MotionBank.build(samples, 32, tmp_path / "banks")
    name = bank.metas[0]["name"]
    Image.fromarray(_disc(96, (48, 48), 30, colour=(0, 0, 255))).save(tmp_path / "flat.png")
    bank.with_cross_styles({name: [tmp_path / "flat.png"]}, tmp_path / "banks", "k")
    assert bank.cross_rows[0][1] == 1 and all(n == 0 for _, n in bank.cross_rows[1:])
    again = MotionBank.build(samples, 32, tmp_path / "banks").with_cross_styles({}, tmp_path / "banks", "k")
    torch.testing.assert_close(again.cross, bank.cross)  # read back from the cache, not rebuilt
    stage = Stage(name="motion", kind="motion", steps=1, canonical_phase=True, p_cross_style=1.0)
    views = [bank.example(0, random.Random(i), stage) for i in range(12)]
    blue = [v for v in views if v[0][2].max() > 0.9 and v[0][0].max() < 0.1]  # the flat still is pure blue
    assert len(blue) == len(views)  # p_cross_style 1: always the cross-style still
    stage.p_cross_style = 0.0
    views += [bank.example(0, random.Random(i), stage) for i in range(12)]
    targets = {}
    for still, vol, plan in views:
        if plan.angle == 0 and plan.scale == 1:
            targets.setdefault(plan.flip, []).append(vol)
    for vols in targets.values():  # one target per mirror, whatever the view
        for v in vols[1:]:
            torch.testing.assert_close(v, vols[0])
