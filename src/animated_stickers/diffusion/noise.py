"""Seeded starting noise x_T, drawn with numpy so the torch and ONNX pipelines start from the same x_T."""

from __future__ import annotations

import numpy as np


def seeded_normal(shape: tuple[int, ...], seeds: list[int]) -> np.ndarray:
    """Standard normal float32 of `shape`; item i comes from its own generator seeded `seeds[i]`, so a
    sticker's result does not depend on what else is in the batch."""
    if len(seeds) != shape[0]:
        raise ValueError(f"{len(seeds)} seeds for a batch of {shape[0]}")
    return np.stack([np.random.default_rng(s).standard_normal(shape[1:], dtype=np.float32) for s in seeds])
