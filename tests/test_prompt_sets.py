"""Prompt sets in the paper's three buckets (section 2.3), built from emoji names and the motion words."""

import pytest

from animated_stickers.data.motionwords import VOCAB, prompt_motion
from animated_stickers.data.prompt_sets import BUCKETS, motion_eval_prompts, prompt_set


def test_buckets_subjects_and_motion_words_agree():
    specs = prompt_set(["1f600", "2764-fe0f", "a paper plane"], 39, seed=4)
    assert len(specs) == 39 and {s.bucket for s in specs} == set(BUCKETS)
    assert {s.subject for s in specs} == {"grinning face", "red heart", "a paper plane"}
    for s in specs:
        assert s.subject in s.prompt
        assert prompt_motion(s.prompt) == s.motion_word, s  # the named word is the one measured against
        if s.bucket == "open-ended":
            assert s.motion_word is None
    action_words = {s.motion_word for s in specs if s.bucket == "action"}
    assert action_words == set(VOCAB) - {"still"}  # 13 action prompts cover the vocabulary
    assert prompt_set(["1f600"], 6, seed=1) == prompt_set(["1f600"], 6, seed=1)
    with pytest.raises(ValueError, match="at least one subject"):
        prompt_set([], 3)


def test_motion_eval_prompts_name_four_different_motions():
    prompts = motion_eval_prompts("1f600")
    assert len(prompts) == 4 and all(p.startswith("grinning face ") for p in prompts)
    assert [prompt_motion(p) for p in prompts] == ["bouncing", "sliding", "spinning", "pulsing"]
