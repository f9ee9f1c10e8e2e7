"""Train / held-out split fixed by a stable hash of the base emoji (skin tones never straddle splits).

The key of a name is its base emoji (code points without skin tones and FE0F, see captions.base_key)
when the file stem is made of code points, else the lower-cased stem itself (user videos). The hash is
SHA-1, so the split is the same on every machine, Python version and run.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePath
from typing import Literal

from .captions import base_key, is_codepoint_stem

Split = Literal["train", "heldout"]
HELDOUT_FRACTION = 0.10
_SALT = "animated-stickers-split-v1"  # changing it reshuffles every split: don't


def split_key(name: str) -> str:
    """The string whose hash decides the split: base emoji for code-point stems, else the stem."""
    stem = PurePath(str(name)).name
    while "." in stem:  # '1f600.webp', '1f600.bounce.webp' -> '1f600'
        stem = stem.rsplit(".", 1)[0]
    return base_key(stem) if is_codepoint_stem(stem) else stem.strip().lower()


def heldout_score(name: str) -> float:
    """A uniform number in [0, 1) derived from the split key (deterministic)."""
    digest = hashlib.sha1(f"{_SALT}:{split_key(name)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(name: str, heldout_fraction: float = HELDOUT_FRACTION) -> Split:
    """'heldout' for about `heldout_fraction` of base emoji, else 'train'; a path or stem is accepted."""
    return "heldout" if heldout_score(name) < heldout_fraction else "train"
