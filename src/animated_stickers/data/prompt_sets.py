"""Prompt sets in the paper's three buckets (section 2.3: action, emotion, open-ended), made from emoji
names and keywords (data/captions.py) and the motion vocabulary (motion/words.py), for the HITL loop.
The evaluation's prompt sets, each motion a label in its own file, are eval/motion_prompts.json and
eval/paraphrase_prompts.json."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..motion.words import VOCAB, named_motion, without_motion_words

BUCKETS = ("action", "emotion", "open-ended")
_ACTION = ["{s} {m}", "a {s} {m}", "{s}, {m}", "cute {s} {m}"]
_EMOTION = [("happy", "bouncing"), ("excited", "hopping"), ("nervous", "shaking"), ("scared", "shaking"),
            ("in love", "pulsing"), ("dizzy", "spinning"), ("sleepy", "floating"), ("agreeing", "nodding"),
            ("friendly", "waving"), ("playful", "wobbling"), ("relaxed", "swaying"), ("cheeky", "blinking"),
            ("proud", "rocking"), ("sad", None), ("angry", None), ("surprised", None), ("laughing", None)]
_OPEN = ["{s}", "a {s} sticker", "{s} having a great day", "{s} at a party", "{s} on a rainy day",
         "{s} saying good morning", "{s}, {k}", "a {k} {s}"]

@dataclass(frozen=True)
class PromptSpec:
    bucket: str  # 'action', 'emotion' or 'open-ended'
    prompt: str
    motion_word: str | None  # the VOCAB word the prompt asks for, None when it names none
    subject: str


def subject_of(name: str) -> tuple[str, list[str]]:
    """An emoji file stem -> (its CLDR label, keywords); any other text is its own subject. Motion words are
    taken out of both ('man bouncing ball' -> 'man ball'): only the prompt's motion phrase names a motion."""
    from .captions import CaptionError, caption_for, is_codepoint_stem

    if is_codepoint_stem(name):
        try:
            cap = caption_for(name)
            keywords = [k for k in cap.keywords if k.lower() not in cap.label.lower() and not named_motion(k)]
            return without_motion_words(cap.label), keywords
        except CaptionError:
            pass
    return without_motion_words(name), []


def prompt_set(subjects: list[str], n: int, seed: int = 0) -> list[PromptSpec]:
    """`n` prompts spread evenly over the three buckets and over `subjects` (emoji stems or plain names);
    reproducible from `seed`. Action prompts cycle through every motion word."""
    if not subjects or n < 1:
        raise ValueError("prompt_set: expected at least one subject and n >= 1")
    rng = random.Random(seed)
    words = [w for w in VOCAB if w != "still"]
    rng.shuffle(words)
    out = []
    for i in range(n):
        label, keywords = subject_of(subjects[i % len(subjects)])
        bucket = BUCKETS[i % 3]
        if bucket == "action":
            word = words[(i // 3) % len(words)]
            phrase = rng.choice(VOCAB[word].variants)
            out.append(PromptSpec(bucket, rng.choice(_ACTION).format(s=label, m=phrase), word, label))
        elif bucket == "emotion":
            mood, word = rng.choice(_EMOTION)
            text = f"{mood} {label}" + (f" {rng.choice(VOCAB[word].variants)}" if word else "")
            out.append(PromptSpec(bucket, text, word, label))
        else:
            template = rng.choice(_OPEN if keywords else [t for t in _OPEN if "{k}" not in t])
            out.append(PromptSpec(bucket, template.format(s=label, k=rng.choice(keywords) if keywords else ""),
                                  None, label))
    return out
