"""The relevance measure: prompt-motion agreement and prompt sensitivity (issue 12)."""

import numpy as np
import pytest

from animated_stickers.data.procedural import animate_still
from animated_stickers.eval.relevance import (
    clip_distance,
    motion_relevance,
    prompt_motion_agreement,
    prompt_sensitivity,
    relevance_summary,
)
from test_motionwords import face


def clip(motion, seed=0):
    return animate_still(face(), motion, size=64, num_frames=16, seed=seed)


def test_agreement_counts_matches_and_states_chance():
    spin, slide = clip("spin"), clip("slide")
    items = [("a face spinning around", spin, 8.0, 8), ("a face sliding left and right", slide, 8.0, 8),
             ("a face spinning around", slide, 8.0, 8), ("a happy face", spin, 8.0, 8)]  # last: no motion word
    out = prompt_motion_agreement(items)
    assert out["n"] == 3 and out["agreement"] == pytest.approx(2 / 3) and out["chance"] == 0.5
    assert out["per_word"]["spinning"] == {"n": 2, "agree": 1, "measured": {"spinning": 1, "sliding": 1}}
    assert prompt_motion_agreement([("a happy face", spin, 8.0, 8)])["agreement"] is None


def test_per_sticker_record_and_summary():
    rec = motion_relevance(clip("pulse"), 8, "heart beating")
    assert rec["motion"]["prompted"] == "pulsing" and rec["motion"]["measured"] == "pulsing"
    assert motion_relevance(clip("pulse"), 8, "a heart") == {}
    s = relevance_summary([rec["motion"], {}, {"prompted": "spinning", "measured": "still"}])
    assert s["n"] == 2 and s["agreement"] == 0.5 and s["chance"] == 0.5


def test_sensitivity_is_prompt_distance_over_seed_distance():
    a, a2 = clip("rock", 0), clip("rock", 1)
    b = clip("spin", 0)
    assert clip_distance(a, a) == 0.0
    ratio = prompt_sensitivity([a], [b], [a2])
    assert ratio == pytest.approx(clip_distance(a, b) / clip_distance(a, a2)) and ratio > 1
    assert prompt_sensitivity([a], [a2], [a2]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="aligned"):
        prompt_sensitivity([a], [], [a2])
    with pytest.raises(ValueError, match="frame size"):
        clip_distance(a, np.zeros((16, 32, 32, 4), np.uint8))
