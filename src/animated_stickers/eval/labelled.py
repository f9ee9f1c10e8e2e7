"""Evaluation prompt sets whose intended motion is a label in their own file (issue 26).

`motion_prompts.json` words four clearly different motions the everyday way; `paraphrase_prompts.json`
words the same motions in phrases that no table of the project holds (a test set: never a training
caption or a run-time rule). The relevance measure reads the label, never the prompt.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

SETS = {"usual": "motion_prompts.json", "paraphrase": "paraphrase_prompts.json"}


@functools.lru_cache(maxsize=None)
def load_set(name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """((motion label, (phrase templates with {s}, ...)), ...) of one set."""
    data = json.loads(Path(__file__).with_name(SETS[name]).read_text())
    return tuple((p["motion"], tuple(p["phrases"])) for p in data["prompts"])


def labelled_prompts(subject: str, set_name: str = "usual", variant: int = 0) -> list[tuple[str, str]]:
    """One (prompt, motion label) per motion of the set for `subject`; `variant` picks the wording
    (stickers rotate through them, so every phrase gets used)."""
    return [(phrases[variant % len(phrases)].format(s=subject), motion) for motion, phrases in load_set(set_name)]
