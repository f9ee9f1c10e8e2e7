"""Unseen-style test sets: Twemoji and Noto Color Emoji stills, reserved for evaluation (issue 11).

Neither style may ever reach training, in any form (the `emoji-datasource-twitter`/`-google` sheets
included), so they are fetched apart from the training packages, into `<cache>/test-only/`, and
`assert_not_training_source` rejects their files wherever data is prepared (data/sources.py's item
builders call it on every item).
"""

from __future__ import annotations

import functools
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path, PurePath

import numpy as np

from ..data.captions import CaptionError, caption_for, is_codepoint_stem, normalise
from ..data.sources import Item, _tarball_stem, fetch_npm
from ..errors import UserError

TEST_ONLY_PACKAGES = {  # package -> pinned version; never in data.sources.NPM_PACKAGES
    "@twemoji/svg": "15.0.0",  # one SVG per emoji, named by code points
    "@svgmoji/noto": "3.2.0",  # Noto Color Emoji SVGs in one sprite (sprites/all.svg)
}
TEST_STYLES = {"twemoji": "@twemoji/svg", "noto": "@svgmoji/noto"}
TEST_LICENSES = {
    "twemoji": "CC BY 4.0 graphics (Twemoji, https://github.com/jdecked/twemoji); npm @twemoji/svg",
    "noto": "Apache 2.0 (Noto Emoji, https://github.com/googlefonts/noto-emoji); npm @svgmoji/noto",
}
TEST_ONLY_DIR = "test-only"  # <cache>/test-only/{npm,src,rendered}: outside every training source listing
# A path component that names a Twemoji/Noto package or copy: 'twemoji-svg-15.0.0', '@twemoji', 'noto-emoji',
# 'svgmoji-noto-3.2.0', 'emoji-datasource-google-16.0.0'... ('notorious' does not match).
_TEST_ONLY_PART = re.compile(r"^@?(twemoji|noto|svgmoji-(twemoji|noto)|emoji-datasource-(twitter|google))(?![a-z])",
                             re.IGNORECASE)


class TestOnlySourceError(UserError):
    """A Twemoji or Noto file offered as training data."""

    __test__ = False  # not a pytest test class despite the name


def _is_test_only_path(path: str | PurePath) -> bool:
    return any(part == TEST_ONLY_DIR or _TEST_ONLY_PART.match(part) for part in PurePath(path).parts)


def assert_not_training_source(path_or_item: str | PurePath | Item | dict) -> None:
    """Raise TestOnlySourceError when a path, Item or prepared record comes from a test-only style."""
    if isinstance(path_or_item, (str, PurePath)):
        source, paths = None, [path_or_item]
    else:
        get = path_or_item.get if isinstance(path_or_item, dict) else lambda k: getattr(path_or_item, k, None)
        source, paths = get("source"), [p for p in (get("path"), get("still_path")) if p]
    bad = next((str(p) for p in paths if _is_test_only_path(p)), None)
    if source in TEST_STYLES or bad:
        raise TestOnlySourceError(f"'{bad or source}': Twemoji/Noto are unseen-style test sets; "
                                  "they can never be training data")


def fetch_test_sets(cache: Path, progress=None) -> list[Path]:
    """`npm pack` the test-only packages into cache/test-only (idempotent); their unpacked folders."""
    return fetch_npm(Path(cache) / TEST_ONLY_DIR, TEST_ONLY_PACKAGES, progress)


def _package(cache: Path, style: str) -> Path:
    name = TEST_STYLES[style]
    folder = Path(cache) / TEST_ONLY_DIR / "src" / _tarball_stem(name, TEST_ONLY_PACKAGES[name]) / "package"
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
    from ..data.svg import png_rgba, render_to_folder

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
