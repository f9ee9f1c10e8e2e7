"""Relevance of the motion to the prompt: does the clip do what the prompt asked for?

The intended motion is a **label** that each evaluation prompt carries in its own file
(motion_prompts.json, paraphrase_prompts.json, a prompts.json entry's "motion"), never read off the
prompt: a measure that parsed the prompt with the sampler's own word table would grade the table
against itself. `motion_agreement`: how often the measured dominant motion of a clip (motion/words.py
measures frames) is the labelled one, with the chance level (one over the number of distinct labels).
`prompt_sensitivity`: how far apart two prompts' outputs are (same sticker, same seed) relative to two
seeds of one prompt; 1 means the prompt does nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..motion.words import describe_motion, dominant_motion

Item = tuple[str | None, np.ndarray, float, int]  # (label, frames (T, H, W, 4) uint8 straight RGBA, fps, cond)


def motion_agreement(items: Sequence[Item]) -> dict:
    """Agreement of measured dominant motion and the labelled motion over the items that carry a label.

    Returns {n, agreement, chance, per_word: {label: {n, agree, measured: {word: count}}}}; agreement and
    chance are None when no item carries a label."""
    records = []
    for label, frames, fps, cond in items:
        if label:
            got = dominant_motion(describe_motion(np.asarray(frames), fps, cond))
            records.append({"prompted": label, "measured": got})
    return relevance_summary(records)


def _premultiplied(frames: np.ndarray) -> np.ndarray:
    x = np.asarray(frames, np.float32) / 255.0
    return np.concatenate([x[..., :3] * x[..., 3:], x[..., 3:]], -1)


def clip_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two clips' premultiplied RGBA frames (0-1), over their common frames."""
    t = min(len(a), len(b))
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"clips differ in frame size: {a.shape[1:]} vs {b.shape[1:]}")
    return float(np.abs(_premultiplied(a[:t]) - _premultiplied(b[:t])).mean())


def prompt_sensitivity(clips_a: Sequence[np.ndarray], clips_b: Sequence[np.ndarray],
                       clips_a_seed2: Sequence[np.ndarray]) -> float:
    """Mean distance between prompt A and prompt B outputs (same sticker, same seed), divided by the mean
    distance between two seeds of prompt A. Lists are aligned by sticker."""
    if not (len(clips_a) == len(clips_b) == len(clips_a_seed2)) or not clips_a:
        raise ValueError("prompt_sensitivity: expected three non-empty lists of clips, aligned by sticker")
    between = np.mean([clip_distance(a, b) for a, b in zip(clips_a, clips_b)])
    seeds = np.mean([clip_distance(a, a2) for a, a2 in zip(clips_a, clips_a_seed2)])
    return float(between / max(seeds, 1e-9))


CLIP_FPS = 8.0  # generated clips: 8 frames at 8 fps (paper 3.1); only the speed adverbs depend on it


def motion_relevance(frames: np.ndarray, cond: int, label: str | None, fps: float = CLIP_FPS) -> dict:
    """{'motion': {prompted, measured, words}} for a clip whose prompt carries a motion label, else {} (the
    per-sticker record `stickers eval auto` keeps next to the calibrated criteria)."""
    if not label:
        return {}
    from ..motion.words import motion_words

    words = motion_words(describe_motion(np.asarray(frames), fps, cond))
    return {"motion": {"prompted": label, "measured": words[0], "words": words}}


def relevance_summary(records: Sequence[dict]) -> dict:
    """Agreement over per-sticker `motion` records (as made by `motion_relevance`): {n, agreement,
    chance, per_word}; n is 0 when no prompt names a motion."""
    rows = [r for r in records if r]
    per_word: dict[str, dict] = {}
    for r in rows:
        row = per_word.setdefault(r["prompted"], {"n": 0, "agree": 0, "measured": Counter()})
        row["n"] += 1
        row["agree"] += int(r["measured"] == r["prompted"])
        row["measured"][r["measured"]] += 1
    agree = sum(row["agree"] for row in per_word.values())
    for row in per_word.values():
        row["measured"] = dict(row["measured"])
    return {"n": len(rows), "agreement": agree / len(rows) if rows else None,
            "chance": 1 / len(per_word) if per_word else None, "per_word": per_word}
