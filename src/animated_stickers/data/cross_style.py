"""Cross-style pairs for the learned motion model (issue 28): the same emoji drawn in another trained
style (Fluent flat, OpenMoji), aligned to the Fluent animation's still and paired with that animation's
motion. The motion of a waving hand does not depend on the 3D look, so a model that also sees the flat
drawing with the same target learns motion from shapes and names, not from shading; Twemoji and Noto
(test sets) are flat styles. A drawing whose silhouette differs (MIN_IOU) is not paired. Fluent
high-contrast stays the project's held-out style and is never paired.

Alignment: the style still is scaled (aspect kept) so its alpha box has the diagonal of the Fluent still's
alpha box and centred on it. The designs of one emoji share a silhouette closely enough at the motion
field's 64 px grid; the target is the Fluent clip's consensus volume (motion/spectral.py), which has no
phase of its own, so any still of the emoji is a view of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..motion.procedural import alpha_box
from .sources import HELDOUT_STYLE, STYLES, emoji_key, render_style
from .unseen import assert_not_training_source

CROSS_STYLES = ("fluent-flat", "openmoji")  # the recipe default: every trained still style but Fluent 3D
VISIBLE = 8  # alpha (0-255) above which a pixel counts for the alpha box
# Least silhouette overlap (IoU of visible pixels) of an aligned still with the animation's: a drawing of
# another design (OpenMoji's caterpillar faces the other way, its hug is two other people) would pair
# the artist's motion with the wrong parts.
MIN_IOU = 0.6


def check_styles(styles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """`styles` if each is a trained SVG still style; UserError naming the first that is not."""
    for s in styles:
        if s == HELDOUT_STYLE or s not in STYLES or s == "fluent-3d":
            allowed = ", ".join(x for x in STYLES if x not in (HELDOUT_STYLE, "fluent-3d"))
            raise UserError(f"cross style '{s}': expected one of {allowed} (the held-out style never trains)")
    return tuple(styles)


def style_index(cache: Path, styles: tuple[str, ...]) -> dict[str, list[Path]]:
    """emoji key -> rendered PNGs of that emoji in `styles` (rendered once into the cache, data/sources.py)."""
    index: dict[str, list[Path]] = {}
    for style in check_styles(styles):
        for name, _, png in render_style(cache, style, progress=False):
            assert_not_training_source(png)
            index.setdefault(emoji_key(name), []).append(Path(png))
    return index


def _box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of alpha > VISIBLE (procedural.alpha_box), exclusive ends; None when nothing is visible."""
    try:
        return tuple(int(v) for v in alpha_box(alpha, VISIBLE))
    except ValueError:  # fully transparent
        return None


def align_to(still: np.ndarray, ref: np.ndarray) -> np.ndarray | None:
    """Straight RGBA `still` (H, W, 4) uint8 placed on a transparent canvas the size of `ref` (S, S, 4) uint8,
    its alpha box scaled to the diagonal of ref's and centred on it; None when either is empty."""
    a, b = _box(still[..., 3]), _box(ref[..., 3])
    if a is None or b is None:
        return None
    aw, ah, bw, bh = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    scale = float(np.hypot(bw, bh) / np.hypot(aw, ah))
    w, h = max(1, round(aw * scale)), max(1, round(ah * scale))
    crop = Image.fromarray(np.ascontiguousarray(still[a[1]:a[3], a[0]:a[2]]), "RGBA").resize((w, h), Image.LANCZOS)
    canvas = Image.new("RGBA", (ref.shape[1], ref.shape[0]), (0, 0, 0, 0))
    canvas.paste(crop, (round((b[0] + b[2] - w) / 2), round((b[1] + b[3] - h) / 2)))  # a copy, clipped at the edges
    return np.asarray(canvas, np.uint8).copy()


def silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the visible pixels of two RGBA images (S, S, 4) of one size."""
    va, vb = a[..., 3] > VISIBLE, b[..., 3] > VISIBLE
    return float((va & vb).sum() / max((va | vb).sum(), 1))


def cross_style_stills(name: str, ref: np.ndarray, index: dict[str, list[Path]]) -> list[np.ndarray]:
    """The stills (S, S, 4) uint8 of emoji `name` in the indexed styles, each aligned to `ref` (S, S, 4) and
    kept when its silhouette overlaps ref's by MIN_IOU."""
    out = []
    for png in index.get(emoji_key(name), []):
        with Image.open(png) as im:
            aligned = align_to(np.asarray(im.convert("RGBA")), ref)
        if aligned is not None and silhouette_iou(aligned, ref) >= MIN_IOU:
            out.append(aligned)
    return out
