"""Clip frame choice (paper 3.1.1 spacing rule) and conditioning frame (paper 3.1.2)."""

import random

import numpy as np
import pytest

from animated_stickers.data.clips import (
    clip_indices,
    cond_frame_index,
    frame_spacing,
    max_start,
    plan_clip,
    take_frames,
)


@pytest.mark.parametrize("video_fps,n,fps,expected", [
    (24, 72, 4, 6),    # every sixth frame of a 24 fps video at 4 fps (the paper's example)
    (24, 72, 8, 3),
    (24, 40, 4, 5),    # short video: floor(40 / 8) = 5 < 6
    (24, 13, 4, 1),    # shortest Fluent animation
    (30, 300, 4, 8),   # round(7.5) = 8
    (24, 5, 4, 1),     # fewer frames than the clip: still >= 1
    (60, 600, 8, 8),
])
def test_spacing_rule(video_fps, n, fps, expected):
    assert frame_spacing(video_fps, n, fps) == expected
    assert frame_spacing(video_fps, n, fps) == max(1, min(round(video_fps / fps), n // 8))


def test_clip_stays_inside_video_or_wraps_when_looping():
    plan = plan_clip(72, 24.0, 4.0, start=max_start(72, 6))
    assert plan.indices == tuple(range(29, 72, 6)) and plan.spacing == 6 and plan.fps == 4.0
    assert clip_indices(72, 6, start=60, loop=True) == [60, 66, 0, 6, 12, 18, 24, 30]
    assert clip_indices(5, 1) == [0, 1, 2, 3, 4, 4, 4, 4]
    rng = random.Random(0)
    for _ in range(200):
        p = plan_clip(50, 24.0, 4.0, rng)
        assert len(p.indices) == 8 and p.indices[-1] < 50
        assert all(b - a == p.spacing for a, b in zip(p.indices, p.indices[1:]))


def test_random_start_covers_all_offsets():
    rng = random.Random(1)
    starts = {plan_clip(72, 24.0, 8.0, rng).indices[0] for _ in range(2000)}
    assert starts == set(range(max_start(72, 3) + 1))


def test_conditioning_frame_modes():
    assert cond_frame_index("middle") == 3  # the 4th of 8 frames
    assert cond_frame_index("first") == 0 and cond_frame_index("last") == 7
    picks = {cond_frame_index("random", rng=random.Random(i)) for i in range(200)}
    assert picks == set(range(8))
    with pytest.raises(ValueError, match="expected one of middle"):
        cond_frame_index("centre")


def test_take_frames_follows_plan():
    frames = np.arange(20)[:, None, None, None] * np.ones((20, 2, 2, 4), np.uint8)
    plan = plan_clip(20, 24.0, 8.0, start=1)
    assert take_frames(frames, plan)[:, 0, 0, 0].tolist() == [1, 3, 5, 7, 9, 11, 13, 15]


def test_constant_rate_steps_expand_held_frames():
    from animated_stickers.data.clips import constant_rate_steps

    assert constant_rate_steps([42] * 6) == (1000 / 42, [0, 1, 2, 3, 4, 5])
    assert constant_rate_steps([41, 42, 42, 41])[1] == [0, 1, 2, 3]  # rounding jitter: identity
    fps, steps = constant_rate_steps([42, 42, 252, 42])  # a frame held 6x (a real Fluent file does this)
    assert fps == 1000 / 42
    assert steps == [0, 1, 2, 2, 2, 2, 2, 2, 3]
    assert constant_rate_steps([0, 0, 0]) == (24.0, [0, 1, 2])  # no durations: assume 24 fps
