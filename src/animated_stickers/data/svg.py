"""SVG stickers to RGBA with resvg-py (transparent background, fit into a `size` x `size` box).

Used for the still styles of data/sources.py (Fluent flat / high-contrast from iconify JSON, OpenMoji
SVG files) and for the unseen-style test sets of data/test_sets.py. Renders are cached as PNG files, written
to a temporary name and renamed, so an interrupted run never leaves a half-written image behind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes

RENDER_SIZE = 512  # long side of cached renders (Telegram's sticker size)
ICONIFY_DEFAULT_SIZE = 16  # iconify's default width/height when neither the icon nor the set gives one


def render_svg(svg: str, size: int = RENDER_SIZE) -> bytes:
    """PNG bytes (RGBA, transparent background) of an SVG string, scaled to fit `size` x `size`."""
    import resvg_py

    # width and height together scale the drawing to fit the box (aspect kept); emoji have no text,
    # so system fonts are not loaded (that is most of resvg's start-up time).
    return resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size, skip_system_fonts=True)


def png_rgba(data: bytes) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of PNG bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGBA"))


def render_svg_rgba(svg: str, size: int = RENDER_SIZE) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of an SVG string whose long side is `size`."""
    return png_rgba(render_svg(svg, size))


def iconify_svgs(icons_json: Path) -> dict[str, str]:
    """{icon name: standalone SVG} of an iconify JSON set (icons and aliases, with their flips/offsets)."""
    data = json.loads(Path(icons_json).read_text(encoding="utf-8"))
    icons, aliases = data.get("icons", {}), data.get("aliases", {})
    defaults = {k: data.get(k, d) for k, d in (("left", 0), ("top", 0), ("width", ICONIFY_DEFAULT_SIZE),
                                                   ("height", ICONIFY_DEFAULT_SIZE))}

    def resolve(name: str, depth: int = 0) -> dict | None:
        # An alias inherits its parent's body and box and adds its own fields (flips XOR, as iconify does).
        if name in icons:
            return {**defaults, **icons[name]}
        alias = aliases.get(name)
        if alias is None or depth > 8 or "parent" not in alias:
            return None
        parent = resolve(alias["parent"], depth + 1)
        if parent is None:
            return None
        merged = {**parent, **{k: v for k, v in alias.items() if k not in ("parent", "hFlip", "vFlip")}}
        for flip in ("hFlip", "vFlip"):
            merged[flip] = bool(parent.get(flip)) != bool(alias.get(flip))
        return merged

    out = {}
    for name in [*icons, *aliases]:
        icon = resolve(name)
        if icon is not None and "body" in icon:
            out[name] = _iconify_svg(icon)
    return out


def _iconify_svg(icon: dict) -> str:
    left, top, w, h = icon["left"], icon["top"], icon["width"], icon["height"]
    body = icon["body"]
    if icon.get("hFlip") or icon.get("vFlip"):  # mirror about the box centre
        sx, sy = (-1 if icon.get("hFlip") else 1), (-1 if icon.get("vFlip") else 1)
        tx, ty = (2 * left + w if sx < 0 else 0), (2 * top + h if sy < 0 else 0)
        body = f'<g transform="translate({tx} {ty}) scale({sx} {sy})">{body}</g>'
    # color="#000": monochrome (high-contrast) sets draw with currentColor; make it explicit.
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{left} {top} {w} {h}" color="#000">{body}</svg>')


def render_to_folder(jobs: Iterable[tuple[str, Callable[[], str]]], folder: Path, size: int = RENDER_SIZE,
                     desc: str = "render", progress: bool = True) -> tuple[dict[str, Path], list[str]]:
    """Render each (file stem, SVG source) to folder/STEM.png unless it exists: ({stem: path}, bad lines).

    An SVG that resvg cannot render becomes a line in the second list instead of stopping the run.
    """
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    jobs = list(jobs)
    paths = {stem: folder / f"{stem}.png" for stem, _ in jobs}
    todo = [(stem, svg) for stem, svg in jobs if not paths[stem].is_file()]
    bad = []
    for stem, svg in tqdm(todo, desc=desc, unit="svg", disable=not progress or not todo):
        try:
            data = render_svg(svg(), size)
        except (ValueError, OSError) as e:
            bad.append(f"{stem}: {e}")
            continue
        atomic_write_bytes(paths[stem], data)
    return {s: p for s, p in paths.items() if p.is_file()}, bad
