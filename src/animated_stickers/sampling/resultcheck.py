"""What a network gives back is checked before it is used, by both engines (torch-free).

Finite weights and finite latents are not enough: a damaged decoder or fusion net can turn good
latents into NaN frames or into frames that are fully transparent, and both would be written as a
valid-looking file with exit code 0. Each check raises BrokenOutput naming the model (or graph).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import UserError

BROKEN_HINT = "its weights are broken; expected a model folder trained by `stickers train`"


class BrokenOutput(UserError):
    """A network output that must not be used (NaN, infinite, or nothing visible); names its source."""


def check_finite(values, what: str, source: str, hint: str = BROKEN_HINT):
    """`values` (a numpy array or torch tensor) unless it holds NaN or infinity."""
    finite = values.isfinite().all() if hasattr(values, "isfinite") else np.isfinite(values).all()
    if not bool(finite):
        raise BrokenOutput(f"{source} gave NaN or infinite {what}: {hint}")
    return values


VISIBLE = 0.5 / 255  # alpha that survives as at least 1 in an 8-bit file


def check_visible(alpha: Sequence, alpha_in: Sequence, names: Sequence[str], source: str,
                  hint: str = BROKEN_HINT) -> None:
    """BrokenOutput when sticker b's frames `alpha[b]` are fully transparent although its input `alpha_in[b]`
    is not (arrays or tensors in [0, 1]; checked before any motion is applied to the frames)."""
    for out, inp, name in zip(alpha, alpha_in, names):
        if float(inp.max()) > VISIBLE and float(out.max()) <= VISIBLE:
            raise BrokenOutput(f"{source} drew '{name}' fully transparent in every frame: {hint}")
