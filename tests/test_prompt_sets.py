"""Prompt sets in the paper's three buckets (section 2.3), built from emoji names and the motion words."""

import pytest

from animated_stickers.data.prompt_sets import BUCKETS, prompt_set, subject_of
from animated_stickers.eval.labelled import labelled_prompts
from animated_stickers.motion.words import VOCAB, named_motion, prompt_request, without_motion_words


def test_buckets_subjects_and_motion_words_agree():
    specs = prompt_set(["1f600", "2764-fe0f", "a paper plane"], 39, seed=4)
    assert len(specs) == 39 and {s.bucket for s in specs} == set(BUCKETS)
    assert {s.subject for s in specs} == {"grinning face", "red heart", "a paper plane"}
    for s in specs:
        assert s.subject in s.prompt
        assert named_motion(s.prompt) == s.motion_word, s  # the named word is the one measured against
        if s.bucket == "open-ended":
            assert s.motion_word is None
    action_words = {s.motion_word for s in specs if s.bucket == "action"}
    assert action_words == set(VOCAB) - {"still"}  # 13 action prompts cover the vocabulary
    assert prompt_set(["1f600"], 6, seed=1) == prompt_set(["1f600"], 6, seed=1)
    with pytest.raises(ValueError, match="at least one subject"):
        prompt_set([], 3)


def _eval_prompts(name: str) -> list[str]:
    return [p for p, _ in labelled_prompts(subject_of(name)[0])]


def test_labelled_eval_prompts_name_four_different_motions():
    prompts = _eval_prompts("1f600")
    assert len(prompts) == 4 and all(p.startswith("grinning face ") for p in prompts)
    # the everyday wording is what the opt-in rigid control understands too
    assert [named_motion(p) for p in prompts] == ["bouncing", "sliding", "spinning", "pulsing"]


def test_a_subject_whose_name_names_a_motion_does_not_add_it_to_the_prompts():
    # Noto's 26f9 is "person bouncing ball": "... bouncing ball sliding left and right" asked for two motions
    prompts = _eval_prompts("man bouncing ball")
    assert [named_motion(p) for p in prompts] == ["bouncing", "sliding", "spinning", "pulsing"]
    assert all(len(prompt_request(p).words) == 1 for p in prompts) and prompts[1].startswith("man ball ")
    specs = prompt_set(["man bouncing ball"], 6, seed=2)
    assert all(named_motion(s.prompt) == s.motion_word for s in specs)
    assert without_motion_words("Grinning face, big eyes") == "Grinning face, big eyes"  # untouched when none
